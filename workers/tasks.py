"""Celery tasks: thin adapters that take primary keys and call a service.

Their names are what the web app sends (``webapp.runs.dispatch``, which never imports this
package); renaming one strands the messages already queued under the old name.
"""

from __future__ import annotations

import logging

from workers.celery_app import app

log = logging.getLogger(__name__)


@app.task(name="workers.train_run", bind=True, ignore_result=True)
def train_run(self, run_id: int) -> str:
    from workers.training import run_execute  # noqa: PLC0415

    return run_execute(run_id, task_id=self.request.id)


@app.task(name="workers.train_run_rank", bind=True, ignore_result=True)
def train_run_rank(self, run_id: int, group: str, rank: int) -> str:
    from workers.distributed.execution import rank_execute  # noqa: PLC0415

    return rank_execute(run_id, group=group, rank=rank)


@app.task(name="workers.serve_run_parameters", bind=True, ignore_result=True)
def serve_run_parameters(self, run_id: int, group: str) -> str:
    from workers.distributed.execution import parameter_server_execute  # noqa: PLC0415

    return parameter_server_execute(run_id, group=group)
