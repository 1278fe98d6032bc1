"""Generated gRPC code of the distributed-training protos (`make protos`; never edited by hand)."""
