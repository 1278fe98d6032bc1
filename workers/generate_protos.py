"""``make protos``: generate the Python modules of every proto under ``workers/*/protos`` (serving,
distributed training) with grpcio-tools, in one step.

The proto import paths mirror the Python packages (``workers/serving/protos/...``), so a generated
``*_pb2_grpc.py`` imports its messages as ``workers.serving.protos.netforge.serving.v1.predict_pb2``.
The generated files are committed and never edited by hand.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKERS = Path(__file__).resolve().parent


def main() -> int:
    from grpc_tools import protoc  # noqa: PLC0415  (a build-time tool: the `test` extra installs it)

    sources = sorted(str(path.relative_to(ROOT)) for path in WORKERS.glob("*/protos/**/*.proto"))
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
