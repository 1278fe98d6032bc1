"""``make protos``: generate the Python modules of the distributed-training protos with grpcio-tools.

The proto import paths mirror the Python package (``workers/distributed/protos/...``), so the generated
``*_pb2_grpc.py`` imports its messages as ``workers.distributed.protos.netforge.distributed.v1.collectives_pb2``.
The generated files are committed and never edited by hand.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROTOS = Path(__file__).resolve().parent / "protos"


def main() -> int:
    from grpc_tools import protoc  # noqa: PLC0415  (a build-time tool: the `test` extra installs it)

    sources = sorted(str(path.relative_to(ROOT)) for path in PROTOS.rglob("*.proto"))
    include = str(Path(protoc.__file__).parent / "_proto")
    status = protoc.main(["grpc_tools.protoc", f"-I{ROOT}", f"-I{include}", f"--python_out={ROOT}",
                          f"--pyi_out={ROOT}", f"--grpc_python_out={ROOT}", *sources])
    if status:
        print(f"protoc failed with status {status}", file=sys.stderr)
        return status
    print("generated: " + ", ".join(sources))
    return 0


if __name__ == "__main__":
    sys.exit(main())
