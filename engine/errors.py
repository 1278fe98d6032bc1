"""Exceptions raised by the engine; each message says what is wrong and where."""

from __future__ import annotations


class EngineError(Exception):
    """Base class of every error the engine raises on purpose."""


class GraphError(EngineError):
    """A graph document is invalid. ``errors`` lists every problem found, each a dict with
    ``node`` (node id or None), ``field`` (e.g. ``"params.units"``), ``code`` and ``message``."""

    def __init__(self, errors: list[dict]):
        self.errors = list(errors)
        lines = [f"- {_where(error)}{error['message']}" for error in self.errors]
        super().__init__(f"invalid graph ({len(self.errors)} problem(s)):\n" + "\n".join(lines))


def _where(error: dict) -> str:
    parts = []
    if error.get("node"):
        parts.append(f"node '{error['node']}'")
    if error.get("field"):
        parts.append(error["field"])
    return (", ".join(parts) + ": ") if parts else ""


class ShapeError(EngineError):
    """A shape rule rejected its inputs. ``field`` names the offending port or parameter."""

    def __init__(self, message: str, field: str | None = None):
        self.field = field
        super().__init__(message)


class DataError(EngineError):
    """A dataset file or array is malformed. The message names the file, row and column."""


class ArtifactError(EngineError):
    """A saved model or checkpoint is missing, truncated, tampered with or mismatched."""


class BackendError(EngineError):
    """The requested device or array library is not available."""


class TrainingCancelled(EngineError):
    """Raised inside the trainer when its cancel flag is set."""
