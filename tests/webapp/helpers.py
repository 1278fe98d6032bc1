"""Helpers shared by the REST tests."""

from __future__ import annotations


def error_of(response) -> dict:
    """The ``error`` object of a JSON error response (and a check that it has the house shape)."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    return body["error"]
