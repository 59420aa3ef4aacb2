"""Long damaged-file run: every kind of damage at many points, loaded in watched children.

    python tests/fuzz/damaged_files.py [--quick] [--seed N] [--keep DIR] [--shared-data DIR]

Prints the cases tried by damage and outcome, then every case that breaks the
contract (anything but LoadError naming the file, or the undamaged file's data;
"different" data only where the format has no way to tell, e.g. a flipped bit
in raw samples).  Exit status 1 when any case breaks it.  The suite runs the
quick corpus of the same generator (``tests/io/test_damaged_corpus.py``).
Not collected by pytest (the name does not start with ``test_``).
"""
import argparse
import os
import pathlib
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import _damage  # noqa: E402

DEFAULT_DATA = pathlib.Path(__file__).resolve().parents[3] / "shared" / "data"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the suite's smaller corpus")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", help="write the corpus here and keep it")
    parser.add_argument("--shared-data", default=os.environ.get("SIGCONV_SHARED_DATA", DEFAULT_DATA))
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per case")
    args = parser.parse_args(argv)
    level = "quick" if args.quick else "long"
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(args.keep or tmp)
        start = time.perf_counter()
        cases = _damage.generate(args.shared_data, out, level=level, seed=args.seed)
        made = time.perf_counter() - start
        results = _damage.run(cases, timeout=args.timeout)
        names = _damage.classify(cases, results)
        print(f"{level} corpus from {args.shared_data}, seed {args.seed}: generated in "
              f"{made:.1f} s, loaded in {time.perf_counter() - start - made:.1f} s")
        print(_damage.summary(cases, results, names))
        return 1 if _damage.failures(cases, results, names) else 0


if __name__ == "__main__":
    sys.exit(main())
