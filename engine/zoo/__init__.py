"""The model zoo: ready graphs in the graph format, each with the dataset and settings it is
trained with in the tests and the quality it reaches there (``metadata.expected``)."""

from __future__ import annotations

import copy
import functools
import json
from importlib import resources

from engine.errors import EngineError


@functools.cache
def _documents() -> dict[str, dict]:
    folder = resources.files(__name__)
    return {
        entry.name.removesuffix(".json"): json.loads(entry.read_text())
        for entry in folder.iterdir()
        if entry.name.endswith(".json")
    }


def names() -> list[str]:
    return sorted(_documents())


def load(name: str) -> dict:
    """A fresh copy of a zoo graph document."""
    documents = _documents()
    if name not in documents:
        raise EngineError(f"no model '{name}' in the zoo; available: {', '.join(names())}")
    return copy.deepcopy(documents[name])


def info() -> list[dict]:
    """Name, title, description, dataset (and its loader options) and expected quality of every zoo model."""
    rows = []
    for name in names():
        meta = _documents()[name].get("metadata", {})
        keys = ("title", "description", "dataset", "dataset_options", "train", "expected")
        rows.append({"name": name, **{k: meta.get(k) for k in keys}})
    return rows
