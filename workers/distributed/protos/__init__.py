"""Generated gRPC code of the distributed-training protos (see workers/distributed/generate_protos.py)."""
