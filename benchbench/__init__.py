"""benchbench: how fast, how well and at what cost a machine trains the classic deep-learning workloads."""

__version__ = "0.1.0"
