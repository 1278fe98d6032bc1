"""JSON that can be stored and sent back: every request body is checked where it is parsed.

Python's ``json`` module reads things that later fail far from the request: a lone surrogate
(``"\\ud800"``) cannot be encoded as UTF-8, so it is saved and then every read of it fails; NUL
cannot be stored in a PostgreSQL text or JSON column; ``1e400`` becomes infinity and ``NaN`` a
float no JSON encoder writes back; a 20-digit integer overflows every database integer and NumPy's
int64. ``check_json`` walks a parsed document once and raises ``UnsafeJsonValue`` naming the JSON
path of the first such value, which the API answers as a 400 (``webapp.core.parsers.JsonBodyParser``
for the REST API, ``webapp.endpoints.serving`` for the prediction routes).
"""

from __future__ import annotations

import contextlib
import gc
import math

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class UnsafeJsonValue(ValueError):
    """A JSON value that cannot be stored or sent back; ``path`` names it (``nodes[3].data.shape[0]``).
    The API answers it as a 400 ``invalid_value`` (``webapp.core.exceptions``)."""

    def __init__(self, path: str, problem: str):
        self.path = path or "body"
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def string_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored or rendered, or None."""
    if "\x00" in text:
        return "contains a NUL character (\\u0000), which cannot be stored"
    if text.isascii():  # the common case, and no surrogate is ASCII
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate (such as \\ud800), which is not valid Unicode text"
    return None


def number_problem(value) -> str | None:
    """Why the number ``value`` cannot be stored or computed with, or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            return f"the integer {_abbreviated(value)} is beyond 64 bits (at most {INT64_MAX})"
    elif isinstance(value, float) and not math.isfinite(value):
        return f"{value} is not a finite number (too large, or NaN/Infinity)"
    return None


def check_json(document, path: str = "", *, allow_non_finite: bool = False) -> None:
    """Raise ``UnsafeJsonValue`` for the first value of ``document`` (keys included) that is a
    string with a lone surrogate or NUL, an integer beyond 64 bits or a non-finite float (unless
    ``allow_non_finite``: the prediction routes name the model input instead). Iterative, so a
    deeply nested document costs no recursion; a path is spelled out only for containers and for
    the value at fault."""
    pending = [(path, None, document)]  # (the container's path, the key or index in it, the value)
    while pending:
        parent, key, value = pending.pop()
        if isinstance(value, str):
            problem = string_problem(value)
        elif isinstance(value, dict):
            where = _join(parent, key)
            for child_key, item in value.items():
                key_problem = string_problem(child_key) if isinstance(child_key, str) else None
                if key_problem:
                    raise UnsafeJsonValue(_join(where, child_key), f"the key {key_problem}")
                pending.append((where, child_key, item))
            continue
        elif isinstance(value, list):
            where = _join(parent, key)
            pending.extend((where, index, item) for index, item in enumerate(value))
            continue
        elif value is None or isinstance(value, bool) or (allow_non_finite and isinstance(value, float)):
            continue
        else:
            problem = number_problem(value)
        if problem:
            raise UnsafeJsonValue(_join(parent, key), problem)


def _join(parent: str, key) -> str:
    if key is None:
        return parent
    if isinstance(key, int):
        return f"{parent}[{key}]"
    text = _printable(str(key))
    return f"{parent}.{text}" if parent else text


def refuse_constant(name: str):
    """``parse_constant`` for ``json.load``: NaN, Infinity and -Infinity are not JSON."""
    raise ValueError(f"{name} is not a JSON number; send a finite number")


def _printable(text: str) -> str:
    """A key as it may appear in an error message (the message itself must be valid text)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\u0000")


def _abbreviated(value: int) -> str:
    digits = str(value)
    return digits if len(digits) <= 24 else f"{digits[:10]}...({len(digits)} digits)"


@contextlib.contextmanager
def collector_paused():
    """The cyclic garbage collector off for one bounded piece of work on a request's JSON (parsing,
    validating, rendering a document of up to ``REQUEST_MAX_BODY_BYTES``). Such work makes hundreds
    of thousands of small acyclic objects, and each collector pass walks all of them again: at
    5,000 graph nodes that is half the time. What the work leaves is freed by reference counting;
    the collector runs again as soon as it is back on."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
