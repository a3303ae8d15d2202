"""Running the workloads: devices and specs, timing, one cell per process, data parallel launch.

Submodules are imported where they are used (``from benchbench.executor import devices``);
importing this package loads nothing else.
"""
