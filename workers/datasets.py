"""The conversion of uploaded datasets, on the ``datasets`` queue (``-Q datasets``).

A thin adapter: the service forks the child that reads the untrusted file under the memory and
size limits (``webapp.datasets.conversion``) and records ``ready`` or ``failed``. The web app
sends this task by name (``webapp.datasets.services.CONVERT_DATASET_TASK``).
"""

from __future__ import annotations

from workers.celery_app import app


@app.task(name="workers.convert_dataset", ignore_result=True)
def convert_dataset(dataset_id: int) -> None:
    from webapp.datasets.services import dataset_convert  # noqa: PLC0415 - models load after Django is set up

    dataset_convert(dataset_id=dataset_id)
