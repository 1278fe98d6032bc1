"""``make bench``: every benchmark, figures and ratios measured side by side in one run."""

import sys

from tests.bench import engine_bench, platform_bench


def main() -> int:
    status = engine_bench.main()
    print("\n" + "=" * 100 + "\n")
    return platform_bench.main() or status


sys.exit(main())
