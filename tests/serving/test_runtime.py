"""The serving runtime's view of the routes when another process changes them: what a request names
that this process has not read yet is looked up before it is refused, and misses share reads."""

from __future__ import annotations

import asyncio
import secrets

import pytest
from asgiref.sync import async_to_sync

from tests.endpoints.test_endpoints_api import published  # noqa: F401 - a published digits endpoint and a key
from webapp.serving import runtime as serving
from webapp.serving.runtime import Unauthenticated


def test_a_key_made_by_another_process_works_at_once_and_a_flood_of_bad_keys_costs_few_reads(published):  # noqa: F811
    from webapp.endpoints.models import ApiKey, Endpoint  # noqa: PLC0415
    from webapp.endpoints.services import KEY_PREFIX  # noqa: PLC0415

    _, _, key = published
    runtime = serving.get_runtime()
    reads = []
    read_routes = runtime.refresh

    def counted_refresh():
        reads.append(1)
        read_routes()

    runtime.refresh = counted_refresh

    async def flood():
        await runtime.resolve("digits", None, key)
        reads.clear()
        return await asyncio.gather(*(runtime.resolve("digits", None, f"nfk_wrong{i}") for i in range(40)),
                                    return_exceptions=True)

    answers = async_to_sync(flood)()
    assert all(isinstance(answer, Unauthenticated) for answer in answers), answers
    assert 1 <= len(reads) <= 2, f"{len(reads)} reads of the routes for 40 concurrent bad keys"

    # Another process (another web process, or a script) creates a key: this one is not told.
    # A request with it, right after the misses above read the routes, must still be answered.
    new_key = KEY_PREFIX + secrets.token_urlsafe(32)
    ApiKey.objects.create(endpoint=Endpoint.objects.get(name="digits"), name="other process", prefix=new_key[:12],
                          key_sha256=serving.hash_key(new_key))
    route, loaded = async_to_sync(runtime.resolve)("digits", None, new_key)
    assert route.name == "digits" and loaded.number == 1


@pytest.fixture(autouse=True)
def _serving(serving_settings):
    return serving_settings
