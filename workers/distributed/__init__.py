"""Distributed data-parallel training: N worker processes train one run together.

- ``rendezvous``: the address and rank registry in Redis, all-start-or-fail, liveness;
- ``ring``: ring all-reduce over gRPC (reduce-scatter then all-gather of one fused buffer);
- ``parameter_server``: synchronous parameter server over gRPC (the server sums, workers apply);
- ``reducer``: the trainer's ``reduce_gradients`` hook (fused share-weighted buffer, stop flag);
- ``worker``: one process's membership of a group; ``execution``: a run's Celery tasks.

Protos: ``protos/netforge/distributed/v1/collectives.proto`` (``make protos``).
"""
