"""Generated gRPC code of the serving protos (see workers/generate_protos.py)."""
