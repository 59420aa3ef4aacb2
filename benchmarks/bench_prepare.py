"""Preparation speed: FSDD clips into a store, items per second with 1 and 2 workers.

    python benchmarks/bench_prepare.py                 # all 3,000 clips, waveform and log-mel
    python benchmarks/bench_prepare.py --limit 600

Each run writes a fresh store in a temporary folder (atomic item writes with
fsync included), so the figures are what a user's first preparation costs.
"""
import argparse
import importlib.util
import os
import pathlib
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(1, str(ROOT))

from sigconv.data import prepare  # noqa: E402


def _fsdd():
    spec = importlib.util.spec_from_file_location("fsdd", ROOT / "datasets" / "fsdd.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", default=str(ROOT.parent / "shared" / "data" / "fsdd"))
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    fsdd = _fsdd()
    sources = fsdd.fsdd_sources(args.source)[:args.limit]
    print(f"{len(sources)} FSDD clips; {os.cpu_count()} cores")
    print(f"{'input':<10} {'workers':>7} {'seconds':>8} {'items/s':>8}")
    for input_kind in ("waveform", "log-mel"):
        for workers in (1, 2):
            with tempfile.TemporaryDirectory() as out:
                start = time.perf_counter()
                summary = prepare(sources, out, fsdd.converter(input_kind), workers=workers,
                                  progress=False, log=None)
                seconds = time.perf_counter() - start
            assert summary.ok == len(sources), summary
            print(f"{input_kind:<10} {workers:>7} {seconds:>8.1f} {len(sources) / seconds:>8.0f}",
                  flush=True)


if __name__ == "__main__":
    main()
