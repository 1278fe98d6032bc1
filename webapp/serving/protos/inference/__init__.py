"""Generated gRPC code of the Open Inference Protocol (`make protos`; never edited by hand)."""
