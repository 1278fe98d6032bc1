"""The security suite runs on the same fixtures as the REST and endpoint tests: users with API
clients, a project with a graph version, the digits dataset, and a published digits endpoint."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from tests.endpoints.conftest import (  # noqa: F401 - the same fixtures as the endpoint tests
    anonymous,
    digits_rows,
    fresh_runtime,
    make_run,
    serving_settings,
    trained_digits,
)
from tests.webapp.conftest import (  # noqa: F401 - the same fixtures as the REST tests
    anonymous_client,
    client,
    digits,
    enqueued,
    graph_version,
    isolated_storage,
    mlp_document,
    other_client,
    other_user,
    project,
    user,
)


@pytest.fixture(autouse=True)
def fresh_throttles():
    """Throttle and lockout counters start at zero in every test (the local-memory cache)."""
    cache.clear()
    yield
    cache.clear()


def dense_chain(nodes: int) -> dict:
    """An editor document: an input, ``nodes - 2`` dense layers in a chain, an output."""
    document_nodes = [{"id": "x", "type": "input", "position": {"x": 0, "y": 0}, "data": {"name": "x", "shape": [16]}}]
    edges = []
    previous = "x"
    for index in range(nodes - 2):
        node_id = f"dense{index}"
        document_nodes.append({"id": node_id, "type": "dense", "position": {"x": 0, "y": index},
                               "data": {"params": {"units": 16}}})
        edges.append({"id": f"e{index}", "source": previous, "target": node_id, "targetHandle": "x"})
        previous = node_id
    document_nodes.append({"id": "out", "type": "output", "position": {"x": 0, "y": nodes}, "data": {"name": "y"}})
    edges.append({"id": "e-out", "source": previous, "target": "out", "targetHandle": "in"})
    return {"format": "netforge.editor/1", "nodes": document_nodes, "edges": edges}
