"""``make bench``: every benchmark, figures and ratios measured side by side in one run."""

import sys

from tests.bench import engine_bench


def main() -> int:
    return engine_bench.main()


sys.exit(main())
