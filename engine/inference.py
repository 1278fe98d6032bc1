"""Loading a saved model for prediction: the graph, its weights and its input schema together."""

from __future__ import annotations

import os

import numpy

from engine import serialization
from engine.data import Standardizer
from engine.errors import EngineError
from engine.model import Model
from engine.registry import FLOAT_DTYPES
from engine.trainer import link_scores


class Predictor:
    """A saved model ready to answer: applies the saved standardization, runs the graph in eval
    mode, and for classifiers adds probabilities, class indices and label names."""

    def __init__(self, artifact: serialization.Artifact, *, device: str = "cpu"):
        self.artifact = artifact
        self.manifest = artifact.manifest
        self.schema = artifact.manifest.get("input_schema", {})
        self.model = Model(artifact.spec, device=device, dtype=_float_dtype(artifact.weights))
        self.model.load_state_arrays(artifact.weights, source=str(artifact.path / serialization.WEIGHTS_FILE))
        self.standardizers = {
            name: Standardizer.from_dict(info["standardization"])
            for name, info in self.schema.get("inputs", {}).items()
            if info.get("standardization") is not None
        }
        self.label_input = self.schema.get("label_input")
        self.feature_inputs = [name for name in self.model.input_types if name != self.label_input]

    @classmethod
    def load(cls, path: str | os.PathLike, *, device: str = "cpu") -> Predictor:
        return cls(serialization.read_artifact(path), device=device)

    def predict(self, inputs, *, batch_size: int = 1024) -> dict:
        """``inputs``: a dict of feature arrays by graph input name, or one array when the graph
        has a single feature input. Returns ``outputs`` (raw graph outputs) and, for classifiers,
        ``probabilities``, ``classes`` and ``labels``; for regression ``values``."""
        if not isinstance(inputs, dict):
            if len(self.feature_inputs) != 1:
                raise EngineError(f"this model takes several inputs {self.feature_inputs}; pass a dict")
            inputs = {self.feature_inputs[0]: inputs}
        arrays = {}
        for name in self.feature_inputs:
            if name not in inputs:
                raise EngineError(f"missing input '{name}'; this model takes {self.feature_inputs}")
            value = inputs[name]
            # Arrays (a store's memory map, a lazy split's rows) are read a chunk of rows at a time below.
            array = value if hasattr(value, "shape") and hasattr(value, "dtype") else numpy.asarray(value)
            declared = self.model.input_types[name]
            if declared.dtype in FLOAT_DTYPES and numpy.dtype(array.dtype).kind not in "fiub":
                raise EngineError(f"input '{name}' must be numeric, got dtype {array.dtype}")
            arrays[name] = array
        outputs = self._predict_in_chunks(arrays, batch_size)
        result = {"outputs": outputs}
        prediction = self.schema.get("prediction")
        link = self.schema.get("link", "identity")
        scores = None
        for name, key in self.model.analysis.outputs.items():
            if key == prediction:
                scores = outputs[name].astype(numpy.float64)
        if scores is None:
            return result
        if link == "softmax":
            probabilities = link_scores(scores, link)
            classes = probabilities.argmax(axis=-1)
        elif link in ("sigmoid", "sign"):
            probabilities = link_scores(scores, link).reshape(len(scores), -1)[:, 0]
            classes = (probabilities >= 0.5).astype(numpy.int64)
        else:
            standardizer = self.standardizers.get(self.label_input)
            result["values"] = standardizer.inverse_transform(scores) if standardizer is not None else scores
            return result
        result["probabilities"] = probabilities
        result["classes"] = classes
        names = self.schema.get("label_names")
        if names:
            result["labels"] = [names[int(c)] for c in classes]
        return result


    def _predict_in_chunks(self, arrays: dict, batch_size: int) -> dict:
        """The graph's outputs for all rows, read, standardized and run ``CHUNK_ROWS`` rows at a
        time: a dataset's split larger than memory is evaluated with bounded memory (the
        standardized float64 copy of a chunk, not of the whole split)."""
        rows = len(next(iter(arrays.values()))) if arrays else 1
        if rows == 0:
            raise EngineError("nothing to predict: the input has no rows")
        step = max(CHUNK_ROWS, batch_size)
        pieces = []
        for start in range(0, rows, step):
            feeds = {}
            for name, array in arrays.items():
                chunk = numpy.asarray(array[start:start + step])
                if name in self.standardizers:
                    chunk = self.standardizers[name].transform(chunk.astype(numpy.float64))
                feeds[name] = chunk
            pieces.append(self.model.predict(feeds, batch_size=batch_size))
        if len(pieces) == 1:
            return pieces[0]
        # A 0-d output is the first batch's, as Model.predict gives it.
        return {name: numpy.concatenate([piece[name] for piece in pieces]) if numpy.ndim(value) else value
                for name, value in pieces[0].items()}


# Rows a prediction reads and prepares at a time (at least a batch).
CHUNK_ROWS = 8192


def _float_dtype(weights: dict) -> str:
    for array in weights.values():
        if array.dtype.kind == "f":
            return str(array.dtype)
    return "float32"


def load_model(path: str | os.PathLike, *, device: str = "cpu") -> Predictor:
    """Load a saved model folder (see ``engine.serialization``) for prediction."""
    return Predictor.load(path, device=device)


__all__ = ["Predictor", "load_model"]
