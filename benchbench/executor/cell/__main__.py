"""``python -m benchbench.executor.cell --cell cell.json --out result.json``: one cell's worker process."""
import sys

from benchbench.executor.cell.worker import main

sys.exit(main())
