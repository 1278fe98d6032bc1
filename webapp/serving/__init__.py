"""Serving published models (contract 6): one model cache and one dynamic batcher behind both the
REST views (``webapp.endpoints.serving``) and the gRPC server (``grpc_server``), both in the ASGI
server's process and on its event loop (``webapp.endpoints.asgi`` starts gRPC), over the model
store: the files of ``<ARTIFACT_ROOT>/endpoints/`` and the database. It belongs to the web app
(it runs in the web process, never on a Celery worker); ``webapp.endpoints`` owns the endpoints'
records and the HTTP routes, this package answers predictions.

- ``batcher``: the dynamic batcher (bounded queue, max batch size, max queue delay);
- ``cache``: loaded, warmed-up versions, each with its batcher thread;
- ``inputs``: request payloads to checked arrays and predictions back (every protocol);
- ``runtime``: routing (endpoints, default versions, API keys) and ``serve``;
- ``metrics``: counts per process, summed in the database, Prometheus export;
- ``grpc_server``: the gRPC ``PredictionService`` (protos in ``protos/netforge/serving/v1``).
"""
