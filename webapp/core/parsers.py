"""The REST API's JSON parser and renderer: bodies checked where they are parsed
(``webapp.core.json_input``), and answers that never fail to encode."""

from __future__ import annotations

import codecs
import json
import math

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer

from webapp.core.json_input import check_json, collector_paused, refuse_constant


class JsonBodyParser(JSONParser):
    """DRF's JSON parser, which also refuses NaN and Infinity literals, then ``check_json``: the
    API's default (``REST_FRAMEWORK``). An unsafe value is a 400 naming its JSON path."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding") or "utf-8"
        with collector_paused():
            try:
                document = json.load(codecs.getreader(encoding)(stream), parse_constant=refuse_constant)
            except ValueError as error:  # UnicodeDecodeError included
                raise ParseError(f"JSON parse error - {error}") from None
            check_json(document)
        return document


class SafeJsonRenderer(JSONRenderer):
    """DRF's JSON renderer, for values stored before the checks above: a lone surrogate is answered
    escaped (``\\ud800``, valid JSON text) and a non-finite float as null, instead of a 500."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        try:
            with collector_paused():  # a validation report of thousands of nodes is a large tree
                return super().render(data, accepted_media_type, renderer_context)
        except (UnicodeEncodeError, ValueError):  # ValueError: "Out of range float values are not JSON compliant"
            return json.dumps(_finite_or_null(data), cls=self.encoder_class, ensure_ascii=True,
                              allow_nan=False).encode("ascii")


def _finite_or_null(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite_or_null(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_or_null(item) for item in value]
    return value
