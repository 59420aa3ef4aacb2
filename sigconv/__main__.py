"""``python -m sigconv``: the ``sigconv`` command line (see :mod:`sigconv.cli`)."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
