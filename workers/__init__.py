"""Celery workers that train runs with the engine (contract 4).

``celery_app`` is the Celery application, ``tasks`` the thin task adapters (the web app sends them
by name: ``webapp.runs.dispatch``), ``training`` the service that executes a run (record, live
view, heartbeat, cancel, checkpoints), ``recording`` the batching of metric points, ``watchdog``
the recovery of runs whose worker died. Every change of a run's state is
``webapp.runs.lifecycle``'s.

Start a worker with ``celery -A workers.celery_app worker -Q cpu`` (``-Q gpu`` where CuPy sees a GPU).
"""
