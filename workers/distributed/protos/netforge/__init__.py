"""Generated gRPC code of the distributed-training protos (see workers/generate_protos.py)."""
