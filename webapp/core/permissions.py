"""Ownership: users see and touch only their own projects and what hangs off them.

Selectors already filter every query by owner, so another user's object is simply not found
(404, which also does not reveal that it exists). ``IsOwner`` is the second lock on the door for
views that fetch objects themselves: it also answers 404, never 403.
"""

from __future__ import annotations

from django.http import Http404
from rest_framework.permissions import BasePermission, IsAuthenticated


def owner_of(obj):
    """The user who owns ``obj``: a project's or dataset's owner; for anything under a project
    (graph version, run) the project's owner; for a run's points and checkpoints the run's."""
    if hasattr(obj, "owner"):
        return obj.owner
    if hasattr(obj, "project"):
        return obj.project.owner
    if hasattr(obj, "run"):
        return obj.run.project.owner
    raise TypeError(f"{type(obj).__name__} has no owner")


def is_owner(user, obj) -> bool:
    return bool(user and user.is_authenticated) and owner_of(obj).pk == user.pk


class IsOwner(BasePermission):
    """Object permission: the requesting user owns the object, else 404 (not 403)."""

    def has_object_permission(self, request, view, obj) -> bool:
        if not is_owner(request.user, obj):
            raise Http404
        return True


# For views that hand out one object: logged in, and the object is theirs.
OWNER_ONLY = [IsAuthenticated, IsOwner]
