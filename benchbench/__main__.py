"""``python -m benchbench``: the command line."""
import sys

from benchbench.cli import main

if __name__ == "__main__":
    sys.exit(main())
