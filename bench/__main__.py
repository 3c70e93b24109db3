"""`python -m bench [name ...]`: run every benchmark module (or the named ones) in turn."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

SKIP = {"common", "pollers", "__main__"}  # helpers, not benchmarks


def main(names: list[str]) -> int:
    available = sorted(
        m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if m.name not in SKIP
    )
    chosen = names or available
    unknown = sorted(set(chosen) - set(available))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(available)}")
        return 2
    for name in chosen:
        print(f"== bench.{name}", flush=True)
        module = importlib.import_module(f"bench.{name}")
        sys.argv = [f"bench.{name}"]  # each benchmark's own argument parser runs on its defaults
        try:
            module.main()
        except SystemExit as exc:  # a benchmark that cannot run here says why and is skipped
            print(exc)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
