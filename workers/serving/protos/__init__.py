"""Generated gRPC code of the serving protos (see workers/serving/generate_protos.py)."""
