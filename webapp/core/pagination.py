"""The API's pagination: DRF's limit and offset, with the page size bounded."""

from __future__ import annotations

from rest_framework.pagination import LimitOffsetPagination


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    """``?limit=`` above ``max_limit`` gives ``max_limit`` items (a huge limit once reached the
    database as an out-of-range integer); an offset past the end gives an empty page."""

    max_limit = 1000
