"""What a sweep adds on top of its trials' runs: the gap between one trial's run finishing and the
next one's starting, on the real platform (Redis, a Celery worker, the ASGI server), for each sampler;
and the cost of one advance (settle, sample, start a run) as the number of finished trials grows,
where TPE refits on every trial.

Target: at most 1 s of sweep machinery per trial. The gap measured counts more than the sweep's own
work (the worker's task ending, the next message's trip through Redis and its claim), so meeting
the target on it bounds the machinery's share from above.
"""

from __future__ import annotations

import statistics
import sys
import time

from tests.bench.platform_bench import bench_user, percentile, start_platform
from tests.platform.harness import DIGITS, Service, Workspace, wait_until

TRIALS = 8
TARGET_SECONDS = 1.0
SPACE = [{"name": "optimizer.lr", "type": "float", "low": 1e-4, "high": 1e-1, "log": True},
         {"name": "batch_size", "type": "choice", "choices": [32, 64, 128]}]


def sweep_gaps(space, sampler: str) -> tuple[list[float], list[float], float]:
    """Run a sweep of ``TRIALS`` one-epoch trials one at a time; (finish -> next trial created,
    finish -> next run started, seconds of the whole sweep) per trial after the first."""
    from webapp.sweeps.models import Sweep, Trial  # noqa: PLC0415

    started = time.perf_counter()
    response = space.user.api.post(f"/api/projects/{space.project.pk}/sweeps", json={
        "graph_version": space.version.pk, "dataset": space.dataset.pk, "hyperparameters": {"epochs": 1},
        "parameters": SPACE, "sampler": sampler, "trial_budget": TRIALS, "parallelism": 1})
    assert response.status_code == 201, response.text
    sweep_id = response.json()["id"]
    wait_until(lambda: Sweep.objects.filter(pk=sweep_id).exclude(state="running").exists(), timeout=600,
               what=f"the {sampler} sweep to finish", interval=0.1)
    seconds = time.perf_counter() - started
    trials = list(Trial.objects.filter(sweep_id=sweep_id).select_related("run").order_by("number"))
    if any(trial.state != "completed" for trial in trials):
        raise RuntimeError(f"{sampler} sweep: {[(trial.state, trial.error) for trial in trials]}")
    created = [(after.run.created_at - before.run.finished_at).total_seconds()
               for before, after in zip(trials, trials[1:], strict=False)]
    started_gaps = [(after.run.started_at - before.run.finished_at).total_seconds()
                    for before, after in zip(trials, trials[1:], strict=False)]
    return created, started_gaps, seconds


def advance_cost(space, finished: int) -> float:
    """Seconds of one ``sweep_advance`` that settles a trial and starts the next by TPE, with
    ``finished`` completed trials before it (made in the database, not trained)."""
    from django.db import transaction  # noqa: PLC0415
    from django.utils import timezone  # noqa: PLC0415

    from webapp.runs.services import validate_hyperparameters  # noqa: PLC0415
    from webapp.sweeps import services  # noqa: PLC0415
    from webapp.sweeps import space as search_space  # noqa: PLC0415
    from webapp.sweeps.models import Sweep, Trial  # noqa: PLC0415

    parameters = [{**SPACE[0], "grid_points": 3}, SPACE[1]]
    sweep = Sweep.objects.create(project=space.project, graph_version=space.version, dataset=space.dataset,
                                 created_by=space.user.model, hyperparameters=validate_hyperparameters({"epochs": 1}),
                                 parameters=parameters,
                                 sampler="tpe", trial_budget=finished + 2, parallelism=1, metric="val_loss",
                                 direction="minimize", state="cancelled")  # out of the workers' ticks until timed
    for number in range(finished):
        point = search_space.random_point(parameters, seed=1, number=number)
        Trial.objects.create(sweep=sweep, number=number, params=point, state="completed",
                             value=point["optimizer.lr"], finished_at=timezone.now())
    # an active trial without a run (as if deleted): the advance settles it, then starts the next
    Trial.objects.create(sweep=sweep, number=finished, params=search_space.random_point(parameters, seed=1,
                                                                                       number=finished))
    started = time.perf_counter()
    with transaction.atomic():  # running and advanced at once: a worker's tick cannot advance it first
        Sweep.objects.filter(pk=sweep.pk).update(state="running")
        services.sweep_advance(sweep_id=sweep.pk)
    seconds = time.perf_counter() - started
    trials = list(Trial.objects.filter(sweep=sweep).order_by("number"))
    if len(trials) != finished + 2 or trials[-1].run_id is None:
        raise RuntimeError(f"the advance did not start trial {finished + 1}: {trials[-1].state} {trials[-1].error}")
    services.sweep_cancel(sweep=Sweep.objects.get(pk=sweep.pk))  # its new run is not trained
    return seconds


def main() -> int:
    print("sweeps bench: Redis, a Celery worker and uvicorn started as in tests/platform\n")
    system = start_platform()
    met = True
    try:
        user = bench_user(system)
        space = Workspace(user, DIGITS)
        space.start_run(epochs=1)  # a fresh worker's first training is slower: not measured
        print(f"a sweep of {TRIALS} one-epoch trials of the digits MLP, one at a time; per trial after the first, "
              "seconds from a run's finish to the next trial's run")
        print(f"{'sampler':10} {'created p50':>12} {'created max':>12} {'started p50':>12} {'started max':>12} "
              f"{'sweep':>8}")
        for sampler in ("random", "tpe"):
            created, started, seconds = sweep_gaps(space, sampler)
            print(f"{sampler:10} {statistics.median(created):12.3f} {max(created):12.3f} "
                  f"{statistics.median(started):12.3f} {max(started):12.3f} {seconds:7.1f}s")
            worst = percentile(started, 1.0)
            ok = worst <= TARGET_SECONDS
            met = met and ok
            print(f"  sweep machinery per trial (finish -> next run started, worst of {len(started)}): {worst:.3f} s "
                  f"(target <= {TARGET_SECONDS:.0f} s: {'met' if ok else 'MISSED'})")
        print("\none advance (settle a finished trial, ask TPE, start the next run), by trials finished before:")
        for finished in (10, 50, 200):
            seconds = advance_cost(space, finished)
            ok = seconds <= TARGET_SECONDS
            met = met and ok
            print(f"  {finished:4} trials: {seconds:.3f} s (target <= {TARGET_SECONDS:.0f} s: "
                  f"{'met' if ok else 'MISSED'})")
        user.api.close()
    finally:
        Service.stop_all()
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
