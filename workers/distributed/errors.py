"""Errors of distributed training; each message says which worker and what to do."""

from __future__ import annotations


class DistributedError(Exception):
    """Base class: a distributed run cannot go on as it is."""


class RendezvousError(DistributedError):
    """Not every worker (or the parameter server) joined within the rendezvous timeout, or the
    group was aborted before it started."""


class LateForRendezvous(RendezvousError):
    """This worker came after its group had closed and started without it (nothing is wrong with
    the run: the group trains with the workers that came in time)."""


class PeerFailure(DistributedError):
    """Another process of the group died, stopped answering, or aborted the group."""

    def __init__(self, message: str, *, rank: int | None = None):
        super().__init__(message)
        self.rank = rank  # the failed worker's rank (-1: the parameter server), when known


class CollectiveTimeout(DistributedError):
    """A collective did not complete within its timeout (no peer was seen failing)."""
