"""``make bench``: every benchmark, figures and ratios measured side by side in one run."""

import sys

from tests.bench import cnn_bench, distributed_bench, engine_bench, platform_bench, rnn_bench, serving_bench


def blas_line() -> str:
    from threadpoolctl import threadpool_info  # noqa: PLC0415

    import numpy  # noqa: F401, PLC0415  (loads its BLAS)

    return ", ".join(f"{pool['internal_api']} {pool.get('version') or ''} {pool.get('architecture') or ''} kernels, "
                     f"{pool['num_threads']} threads" for pool in threadpool_info()) or "no BLAS pool found"


def main() -> int:
    print(f"NumPy's BLAS: {blas_line()}\n")
    status = engine_bench.main()
    print("\n" + "=" * 100 + "\n")
    status = cnn_bench.main() or status
    print("\n" + "=" * 100 + "\n")
    status = rnn_bench.main() or status
    print("\n" + "=" * 100 + "\n")
    status = serving_bench.main() or status
    print("\n" + "=" * 100 + "\n")
    status = distributed_bench.main() or status
    print("\n" + "=" * 100 + "\n")
    return platform_bench.main() or status


sys.exit(main())
