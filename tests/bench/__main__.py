"""``make bench``: every benchmark, figures and ratios measured side by side in one run."""

import subprocess
import sys


def blas_line() -> str:
    import numpy  # noqa: F401, PLC0415  (loads its BLAS)
    from threadpoolctl import threadpool_info  # noqa: PLC0415

    return ", ".join(f"{pool['internal_api']} {pool.get('version') or ''} {pool.get('architecture') or ''} kernels, "
                     f"{pool['num_threads']} threads" for pool in threadpool_info()) or "no BLAS pool found"


# Each benchmark in a fresh process: they start services and configure Django for them, and one
# benchmark's threads, caches or settings must not weigh on the next.
BENCHMARKS = ("engine_bench", "cnn_bench", "rnn_bench", "transformer_bench", "serving_bench", "distributed_bench",
              "platform_bench", "datasets_bench", "validation_bench", "sweeps_bench", "layer_stats_bench")


def threads_line() -> str:
    from engine import parallel  # noqa: PLC0415

    return (f"engine threads: {parallel.default_threads()} ({parallel.ENVIRONMENT_VARIABLE} or the usable cores; "
            "the CNN bench also measures one)")


def main() -> int:
    print(f"NumPy's BLAS: {blas_line()}\n{threads_line()}\n", flush=True)
    status = 0
    for index, name in enumerate(BENCHMARKS):
        if index:
            print("\n" + "=" * 100 + "\n", flush=True)
        code = subprocess.run([sys.executable, "-m", f"tests.bench.{name}"], check=False).returncode
        if code:
            print(f"\n{name}: exit status {code} (a missed target or a failure)", flush=True)
        status = status or code
    return status


sys.exit(main())
