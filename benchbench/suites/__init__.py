"""The built-in workloads: one file per workload, loaded by path by ``benchbench.registry.discover``.

They live inside the package so that an installed wheel carries them; a folder ``./suites`` in the
current directory, or the ``benchbench.workloads`` entry point, adds a user's own.
"""
