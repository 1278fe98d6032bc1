"""Generated gRPC code of the serving protos (`make protos`; never edited by hand)."""
