"""NetForge engine: vectorized computation graphs with reverse-mode autodiff on NumPy or CuPy.

Usable alone, from a script or ``python -m engine``::

    import engine
    spec = engine.zoo.load("mlp")                         # a netforge.graph/1 document
    report = engine.validate(spec)                        # shapes, parameters, FLOPs, or errors
    trainer, result = engine.fit(spec, "digits", epochs=5, batch_size=64)   # options: engine.training_options
    trainer.save_model("out/mlp")
    predictor = engine.load_model("out/mlp")
"""

from __future__ import annotations

__version__ = "0.1.0"

from engine.errors import (
    ArtifactError,
    BackendError,
    DataError,
    EngineError,
    GraphError,
    ShapeError,
    TrainingCancelled,
)
from engine.graph import FORMAT, GraphBuilder, analyze, validate
from engine.model import Model, compile
from engine.registry import catalog, get_op, op_names


def __getattr__(name: str):
    # The training stack (data, metrics, optimizers) loads on first use, so that building and
    # validating graphs stays quick to import.
    import importlib  # noqa: PLC0415

    lazy = {
        "fit": ("engine.trainer", "fit"),
        "Trainer": ("engine.trainer", "Trainer"),
        "TrainConfig": ("engine.trainer", "TrainConfig"),
        "load_model": ("engine.inference", "load_model"),
        "Predictor": ("engine.inference", "Predictor"),
        "validate_training_options": ("engine.training_options", "validate_training_options"),
        "TrainingOptionsError": ("engine.option_schema", "TrainingOptionsError"),
    }
    if name in lazy:
        module, attribute = lazy[name]
        return getattr(importlib.import_module(module), attribute)
    if name in ("data", "metrics", "optimizers", "schedules", "initializers", "zoo", "testing", "serialization",
                "training_options"):
        return importlib.import_module(f"engine.{name}")
    raise AttributeError(f"module 'engine' has no attribute {name!r}")


__all__ = [
    "FORMAT",
    "ArtifactError",
    "BackendError",
    "DataError",
    "EngineError",
    "GraphBuilder",
    "GraphError",
    "Model",
    "ShapeError",
    "TrainingCancelled",
    "analyze",
    "catalog",
    "compile",
    "get_op",
    "op_names",
    "validate",
]
