"""The op catalog and the graph templates the editor offers (engine's catalog and zoo)."""

from __future__ import annotations

import copy
import functools

import engine
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


def template_list() -> list[dict]:
    templates = []
    for row in zoo.info():
        templates.append({**row, "editor_document": spec_to_editor_document(zoo.load(row["name"]))})
    return templates
