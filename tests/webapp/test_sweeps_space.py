"""The pure parts of sweeps: the search space (grid, random points, applying a point) and the pruning
rules over per-epoch histories."""

from __future__ import annotations

import pytest

from webapp.core.exceptions import InvalidInput
from webapp.sweeps import pruning, space

LR = {"name": "optimizer.lr", "type": "float", "low": 1e-4, "high": 1e-2, "log": True, "grid_points": 3}
UNITS = {"name": "node:block.1.units", "type": "int", "low": 8, "high": 64, "log": True}


def cleaned(*parameters):
    return space.clean_parameters(list(parameters), node_ids={"block.1", "fc"})


def test_a_node_parameter_names_its_node_up_to_the_last_dot():
    assert space.split_node_parameter("node:block.1.units") == ("block.1", "units")
    assert cleaned(UNITS)[0] == {**UNITS, "grid_points": 3}
    with pytest.raises(InvalidInput, match=r"parameters\[0\]: the graph has no node 'block'"):
        cleaned({**UNITS, "name": "node:block.units"})


def test_grid_values_are_even_or_geometric_and_whole_for_ints():
    lr, units = cleaned(LR, {**UNITS, "grid_points": 4})
    assert space.grid_values(lr) == [0.0001, 0.001, 0.01]
    assert space.grid_values(units) == [8, 16, 32, 64]
    linear = cleaned({"name": "epochs", "type": "int", "low": 1, "high": 2, "grid_points": 5})[0]
    assert space.grid_values(linear) == [1, 2]  # duplicates after rounding are tried once


def test_the_grid_varies_the_last_parameter_fastest_and_ends():
    parameters = cleaned(LR, {"name": "batch_size", "type": "choice", "choices": [16, 32]})
    assert space.grid_size(parameters) == 6
    assert space.grid_point(parameters, 1) == {"optimizer.lr": 0.0001, "batch_size": 32}
    assert space.grid_point(parameters, 5) == {"optimizer.lr": 0.01, "batch_size": 32}
    assert space.grid_point(parameters, 6) is None


def test_random_points_stay_in_range_and_repeat_for_the_same_seed_and_number():
    parameters = cleaned(LR, UNITS)
    points = [space.random_point(parameters, seed=3, number=number) for number in range(50)]
    assert all(1e-4 <= point["optimizer.lr"] <= 1e-2 and 8 <= point["node:block.1.units"] <= 64 for point in points)
    assert all(isinstance(point["node:block.1.units"], int) for point in points)
    assert space.random_point(parameters, seed=3, number=7) == points[7]
    assert space.random_point(parameters, seed=4, number=7) != points[7]
    below = sum(point["optimizer.lr"] < 1e-3 for point in points)
    assert 15 <= below <= 35  # log scale: about half the draws below the geometric middle


def test_a_point_sets_options_by_path_and_node_parameters_in_the_document():
    options = space.apply_to_hyperparameters({"optimizer": {"name": "adam", "lr": 0.1}, "epochs": 3},
                                             {"optimizer.lr": 0.01, "early_stopping.patience": 2, "node:fc.units": 4})
    assert options == {"optimizer": {"name": "adam", "lr": 0.01}, "epochs": 3, "early_stopping": {"patience": 2}}
    document = {"nodes": [{"id": "fc", "data": {"params": {"units": 32, "use_bias": True}}}]}
    changed = space.apply_to_editor_document(document, {"node:fc.units": 4, "optimizer.lr": 0.01})
    assert changed["nodes"][0]["data"]["params"] == {"units": 4, "use_bias": True}
    assert document["nodes"][0]["data"]["params"]["units"] == 32  # the original is left as it was


def test_median_pruning_compares_the_best_so_far_with_the_completed_trials_at_that_epoch():
    completed = [{1: 0.5, 2: 0.4}, {1: 0.7, 2: 0.6}, {1: 0.9}]
    rule = {"minimize": True, "startup_trials": 2, "warmup_epochs": 1}
    assert pruning.median_should_prune({1: 0.8}, completed, **rule) == 1  # median 0.7
    assert pruning.median_should_prune({1: 0.6}, completed, **rule) is None
    assert pruning.median_should_prune({1: 0.45, 2: 0.9}, completed, **rule) is None  # its best so far, 0.45 < 0.5
    assert pruning.median_should_prune({1: 0.8}, completed[:1], **rule) is None  # too few completed yet
    assert pruning.median_should_prune({1: 0.8}, completed, **{**rule, "warmup_epochs": 2}) is None
    assert pruning.median_should_prune({1: 0.8}, completed, **{**rule, "minimize": False}) is None


def test_successive_halving_judges_each_rung_once():
    assert pruning.rung_epochs(min_epochs=1, reduction_factor=3, up_to=10) == [1, 3, 9]
    everyone = [{1: 0.2, 3: 0.1}, {1: 0.3, 3: 0.25}, {1: 0.5}]
    rule = {"minimize": True, "min_epochs": 1, "reduction_factor": 3}
    assert pruning.successive_halving_decision({1: 0.2, 3: 0.1}, everyone, last_rung_checked=-1, **rule) == (1, None)
    assert pruning.successive_halving_decision({1: 0.3}, everyone, last_rung_checked=-1, **rule) == (0, 1)
    # promoted at rung 0 earlier, it is not judged there again; at rung 1 it is not the best of two
    assert pruning.successive_halving_decision({1: 0.3, 3: 0.25}, everyone, last_rung_checked=0, **rule) == (1, 3)


def test_pruner_options_are_checked_by_name():
    assert pruning.clean_options("median", {"warmup_epochs": 3}) == {"startup_trials": 2, "warmup_epochs": 3}
    with pytest.raises(InvalidInput, match="pruner_options.min_epochs: the median pruner has no such option"):
        pruning.clean_options("median", {"min_epochs": 1})
    with pytest.raises(InvalidInput, match="pruner_options.reduction_factor must be a whole number of at least 2"):
        pruning.clean_options("successive_halving", {"reduction_factor": 1})
