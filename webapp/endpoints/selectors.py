"""Reads of endpoints: always through the owner, so another user's endpoint is simply not found."""

from __future__ import annotations

from django.http import Http404

from webapp.endpoints.models import ApiKey, Endpoint, ModelVersion


def endpoints_of(user):
    return (Endpoint.objects.filter(owner=user).select_related("default_version")
            .prefetch_related("versions"))


def endpoint_of(user, name: str) -> Endpoint:
    endpoint = endpoints_of(user).filter(name=name).first()
    if endpoint is None:
        raise Http404(f"no endpoint named {name!r}")
    return endpoint


def version_of(endpoint: Endpoint, number: int) -> ModelVersion:
    version = endpoint.versions.select_related("run").filter(number=number).first()
    if version is None:
        raise Http404(f"endpoint {endpoint.name!r} has no version {number}")
    return version


def api_keys_of(endpoint: Endpoint):
    return ApiKey.objects.filter(endpoint=endpoint)


def api_key_of(endpoint: Endpoint, key_id: int) -> ApiKey:
    api_key = api_keys_of(endpoint).filter(pk=key_id).first()
    if api_key is None:
        raise Http404(f"endpoint {endpoint.name!r} has no API key {key_id}")
    return api_key
