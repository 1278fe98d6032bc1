"""``make bench``: every benchmark, figures and ratios measured side by side in one run."""

import sys

from tests.bench import cnn_bench, distributed_bench, engine_bench, platform_bench, rnn_bench, serving_bench


def main() -> int:
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
