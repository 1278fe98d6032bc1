"""Query-string values the API reads, checked where they are read: an id is a positive 64-bit integer,
so a longer digit string (which overflows the database's integers) or a Unicode digit ('²', which
``str.isdigit`` accepts and ``int`` refuses) is a 400 naming the parameter, not a 500."""

from __future__ import annotations

from webapp.core.exceptions import InvalidInput
from webapp.core.json_input import INT64_MAX


def id_param(request, name: str) -> int | None:
    """The query parameter ``name`` as an id, or None when absent or empty."""
    value = request.query_params.get(name)
    if value in (None, ""):
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 19 or int(value) > INT64_MAX:
        raise InvalidInput(f"'{name}' must be an id (a whole number below 2**63), got {value[:40]!r}",
                           details={name: ["not an id"]})
    return int(value)
