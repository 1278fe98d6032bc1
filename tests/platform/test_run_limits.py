"""A run's limits enforced by a real Celery worker (workers/training.py, workers/recording.py): the
per-run memory limit fails that run and the worker lives on, the wall-clock limit stops a run as
timed_out with its checkpoints, checkpoints are pruned to the newest K and the best, and a user's
runs beyond the running limit wait queued.

The limits are settings the worker reads when it starts, so this module runs a platform of its own
with small ones (``LIMITS``), beside the session's."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import pytest

from tests.platform.harness import DIGITS, MOONS, Platform, get_run, mlp_spec, wait_for_run

pytestmark = pytest.mark.xdist_group("platform")

MEMORY_LIMIT_MB = 200
LIMITS = {
    "NETFORGE_RUN_MEMORY_LIMIT_MB": str(MEMORY_LIMIT_MB),
    "NETFORGE_RUN_MAX_MEMORY_MB": "100000",  # the door lets the too-large model through to the worker
    "NETFORGE_RUN_MAX_SECONDS": "8",
    "NETFORGE_RUN_CHECKPOINTS_KEPT": "2",
    "NETFORGE_RUN_MAX_RUNNING_PER_USER": "1",
    "NETFORGE_RUN_DEFER_SECONDS": "0.5",
}
# 64 inputs to 300,000 hidden units: 19 million weights, about 77 MB, and with their gradients and
# Adam's two slots over 300 MB, beyond the limit.
TOO_LARGE = {**DIGITS, "spec": lambda: mlp_spec(64, 10, hidden=300_000)}
FINISHED = ("succeeded", "failed", "cancelled", "timed_out")


@pytest.fixture(scope="module")
def platform():
    home = Path(tempfile.mkdtemp(prefix="netforge-limits-"))
    system = Platform(home)
    system.env.update(LIMITS)
    try:
        system.start_database()
        system.start_redis()
        system.migrate()
        system.start_web()
        system.start_worker()
        yield system
    finally:
        for service in (system.worker, system.web, system.redis, system.postgres):
            if service is not None:
                service.stop()
        shutil.rmtree(home, ignore_errors=True)


def finished(run_id: int, timeout: float = 60):
    return wait_for_run(run_id, lambda run: run.state in FINISHED, timeout=timeout, what=f"run {run_id} to finish")


def test_a_run_over_the_memory_limit_fails_naming_it_and_the_next_run_on_the_worker_succeeds(workspace):
    too_large = workspace(TOO_LARGE).start_run(epochs=2, batch_size=64)
    run = finished(too_large["id"])
    assert run.state == "failed", run.error
    assert run.error.startswith(f"run {run.pk} used more than the {MEMORY_LIMIT_MB}.0 MiB per-run memory limit "
                                "(NETFORGE_RUN_MEMORY_LIMIT_MB)"), run.error

    small = finished(workspace(DIGITS).start_run(epochs=2, batch_size=64)["id"])
    assert small.state == "succeeded", small.error
    assert small.worker == run.worker, "the same pool process trained it: the worker lived on"


def test_a_run_past_its_time_limit_stops_timed_out_with_its_checkpoints(workspace):
    space = workspace(MOONS)
    started = space.start_run(epochs=10_000, batch_size=8, validation_fraction=0.2)
    run = finished(started["id"], timeout=60)
    assert run.state == "timed_out", (run.state, run.error)
    assert "the per-run time limit (NETFORGE_RUN_MAX_SECONDS)" in run.error
    assert 0 < run.epochs_completed < 10_000
    assert run.final_metrics["epochs"] == run.epochs_completed
    kept = list(run.checkpoints.order_by("epoch"))
    assert kept and all(Path(checkpoint.path).is_dir() for checkpoint in kept)
    assert kept[-1].epoch == run.epochs_completed

    resumed = space.user.api.post(f"/api/runs/{run.pk}/resume")
    assert resumed.status_code == 200, resumed.text
    assert finished(run.pk, timeout=60).attempt == 2


def test_checkpoints_are_pruned_to_the_newest_and_the_best(workspace):
    from webapp.runs.models import MetricPoint  # noqa: PLC0415

    space = workspace(DIGITS)
    started = space.start_run(epochs=8, batch_size=64, optimizer={"name": "adam", "lr": 0.05})
    run = finished(started["id"])
    assert run.state == "succeeded", run.error
    epochs = run.epochs_completed
    steps = dict(MetricPoint.objects.filter(run=run, name="val_loss").values_list("epoch", "value"))
    best = min(sorted(steps), key=lambda epoch: steps[epoch])
    expected = {epochs - 1, epochs, int(best)}
    kept = list(run.checkpoints.all())
    assert {checkpoint.epoch for checkpoint in kept} == expected
    assert all(checkpoint.size_bytes > 0 for checkpoint in kept)
    folders = {folder.name for folder in (Path(kept[0].path).parent).iterdir()}
    assert folders == {f"epoch-{epoch:04d}" for epoch in expected}, "the pruned checkpoints' files are gone"
    usage = space.user.api.get("/api/auth/me/").json()["usage"]
    assert usage["storage"]["checkpoints"] >= sum(checkpoint.size_bytes for checkpoint in kept)


def test_a_users_runs_beyond_the_running_limit_wait_queued(workspace):
    from webapp.runs.models import Run  # noqa: PLC0415

    space = workspace(DIGITS)
    # The user already has one run training (on a worker this platform does not see).
    elsewhere = Run.objects.create(project=space.project, graph_version=space.version, dataset=space.dataset,
                                   state=Run.State.RUNNING, attempt=1)
    waiting = space.start_run(epochs=1, batch_size=64)
    wait_for_run(waiting["id"], lambda run: run.task_id, timeout=10, what="the run to be sent")
    time.sleep(3)
    assert get_run(waiting["id"]).state == "queued", "it waited for the user's running run"
    Run.objects.filter(pk=elsewhere.pk).update(state=Run.State.SUCCEEDED)
    assert finished(waiting["id"], timeout=30).state == "succeeded"


def test_a_dataset_larger_than_the_memory_limit_trains_from_its_store(platform, workspace):
    """The worker's limit counts what a run allocates, not its dataset's read-only memory map: a
    converted store of 256 MiB trains under the 200 MiB limit, a batch read at a time."""
    import numpy  # noqa: PLC0415

    from engine.data import Dataset as EngineDataset  # noqa: PLC0415
    from engine.data.store import write_store  # noqa: PLC0415
    from webapp.datasets.conversion import dataset_folder  # noqa: PLC0415
    from webapp.datasets.models import Dataset  # noqa: PLC0415

    rows, features = 65_536, 1024
    space = workspace({**DIGITS, "spec": lambda: mlp_spec(features, 2, hidden=8)})
    record = Dataset.objects.create(owner=space.user.model, name="large", kind=Dataset.Kind.UPLOAD, file_format="npz",
                                    state=Dataset.State.READY, rows=rows)
    folder = platform.home / "media" / dataset_folder(record.pk) / "store"
    folder.mkdir(parents=True)
    source = numpy.lib.format.open_memmap(folder.parent / "source.npy", mode="w+", dtype=numpy.float32,
                                          shape=(rows, features))
    rng = numpy.random.default_rng(0)
    for start in range(0, rows, 8192):
        source[start:start + 8192] = rng.standard_normal((8192, features), dtype=numpy.float32)
    labels = (numpy.asarray(source[:, 0]) > 0).astype(numpy.int64)
    stored = EngineDataset(arrays={"x": source, "y": labels}, task="binary", name="large", num_classes=2)
    manifest = write_store(stored, folder)
    del source
    (folder.parent / "source.npy").unlink()
    record.schema = {**stored.schema(), "metadata": {}}
    record.content_hash, record.size_bytes = manifest["content_hash"], manifest["size_bytes"]
    record.save()
    assert manifest["size_bytes"] > 1.2 * MEMORY_LIMIT_MB * 2**20
    space.dataset = record

    run = finished(space.start_run(epochs=1, batch_size=512, optimizer={"name": "adam", "lr": 0.01})["id"], timeout=120)
    assert run.state == "succeeded", run.error
    assert run.final_metrics["val_loss"] < 0.6, run.final_metrics  # chance is ln 2
