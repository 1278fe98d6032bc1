"""The op catalog and the graph templates the editor offers (engine's catalog and zoo), and the
training options the train panel offers (engine's training-option schema)."""

from __future__ import annotations

import copy
import functools

import engine
from engine import training_options as training_options_module
from engine import zoo
from webapp.projects.converter import EDITOR_FORMAT, SPECIAL_NODE_TYPES, spec_to_editor_document


@functools.cache
def _catalog() -> dict:
    catalog = engine.catalog()
    return {
        **catalog,
        "editor_format": EDITOR_FORMAT,
        "special_nodes": SPECIAL_NODE_TYPES,
        "templates": template_list(),
    }


def op_catalog() -> dict:
    """``engine.catalog()`` (format, engine_version, categories, ops) plus the editor's special node
    types and the zoo models as templates, each with its editor document. Built once per process."""
    return copy.deepcopy(_catalog())


@functools.cache
def _training_options() -> dict:
    # Imported here: the run services load the projects and datasets apps, which the catalog needs not.
    from webapp.runs.services import PLATFORM_OPTIONS  # noqa: PLC0415

    return {**training_options_module.schema(), "reserved": PLATFORM_OPTIONS}


def training_options() -> dict:
    """``engine.training_options.schema()`` (every training option with its type, default, bounds
    or choices, label and doc) plus ``reserved``: the options a run's hyperparameters may not set,
    each with the reason (the platform sets them). Built once per process."""
    return copy.deepcopy(_training_options())


def template_list() -> list[dict]:
    templates = []
    for row in zoo.info():
        templates.append({**row, "editor_document": spec_to_editor_document(zoo.load(row["name"]))})
    return templates
