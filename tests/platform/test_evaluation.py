"""A run trained by the real worker ends with its model evaluated on the validation split, and the
evaluation is served over REST."""

from __future__ import annotations

import pytest

from tests.platform.harness import get_run, wait_for_run

pytestmark = pytest.mark.xdist_group("platform")


def test_a_succeeded_run_has_its_evaluation(workspace):
    space = workspace()
    run = space.start_run(epochs=1, batch_size=64)
    pending = space.user.api.get(f"/api/runs/{run['id']}/evaluation").json()
    assert pending["state"] in ("pending", "ready")  # the worker may be quicker than this request

    wait_for_run(run["id"], lambda r: r.is_finished, timeout=60, what="the run to finish")
    assert get_run(run["id"]).state == "succeeded", get_run(run["id"]).error
    response = space.user.api.get(f"/api/runs/{run['id']}/evaluation")
    assert response.status_code == 200
    evaluation = response.json()
    assert evaluation["state"] == "ready" and evaluation["run_state"] == "succeeded", evaluation
    assert evaluation["split"] == "validation" and sum(map(sum, evaluation["confusion_matrix"])) == 359
    assert evaluation["image_shape"] == [1, 8, 8] and len(evaluation["samples"]) == 24
    assert all(sample["image"].startswith("data:image/png;base64,") for sample in evaluation["samples"])
