"""The parent process's side of a run: one worker process per cell (``launcher``), the worker's
lifeline, out-of-memory evidence, the progress display and the termination signals."""
