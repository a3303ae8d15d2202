"""The exception type for problems the user can fix (exit status 2 at the command line).

Everything else that escapes a command is a bug in benchbench: the command line reports it
as ``internal error`` with exit status 3, keeping any finished cells.
"""
from __future__ import annotations


class UserError(ValueError):
    """An input, option or environment problem that the user can fix; one line for people.

    Raised at validation points (options, plan files, results files, output paths, locks).
    A subclass of ``ValueError`` so that library callers catching ``ValueError`` still do. Every
    error a user can cause is one of these (or a subclass below), so the command line maps them
    to exit 2 by type alone. This module is a leaf: every layer may import it, it imports nothing.
    """


class PlanError(UserError):
    """bench.yaml or a command-line option is invalid; the message is one line for people."""
