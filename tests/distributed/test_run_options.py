"""The distributed options of a run's hyperparameters, as the web app checks them (a 400 naming
the field, never a 500), and as the worker strips them before the engine sees the rest."""

from __future__ import annotations

import pytest

from webapp.core.exceptions import InvalidInput
from webapp.runs.services import validate_hyperparameters
from workers.training import DISTRIBUTED_OPTIONS


def test_strategy_and_staleness_are_kept_beside_the_training_options():
    config = validate_hyperparameters({"epochs": 2, "strategy": "ps", "staleness": 1, "workers": 3})
    assert config["strategy"] == "ps" and config["staleness"] == 1 and config["epochs"] == 2
    assert "workers" not in config  # the run's own field
    assert set(DISTRIBUTED_OPTIONS) == {"strategy", "staleness"}


@pytest.mark.parametrize(("hyperparameters", "field", "message"), [
    ({"strategy": "gossip"}, "strategy", "strategy must be one of allreduce, ps, got 'gossip'"),
    ({"strategy": "allreduce", "staleness": 1}, "staleness", "it needs strategy 'ps'"),
    ({"strategy": "ps", "staleness": -1}, "staleness", "staleness must be an integer >= 0"),
    ({"strategy": "ps", "staleness": True}, "staleness", "staleness must be an integer >= 0"),
])
def test_bad_distributed_options_name_the_field(hyperparameters, field, message):
    with pytest.raises(InvalidInput) as raised:
        validate_hyperparameters(hyperparameters)
    assert message in str(raised.value)
    assert f"hyperparameters.{field}" in raised.value.details
