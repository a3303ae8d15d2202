"""Parsing a plan file (bench.yaml) safely: no aliases, no duplicate keys, bounded size.

PyYAML's safe loader still expands aliases: a few lines of nested ``&a [*b, *b, ...]``
("billion laughs") become a structure that copying or writing out expands
exponentially. A plan never needs an alias, so this loader refuses them, counts the
nodes, bounds the nesting and refuses a mapping that gives a key twice (where
PyYAML silently keeps the last value).

Example:
    >>> data, node = load_text("devices: [cpu]\\n", "bench.yaml")
    >>> data
    {'devices': ['cpu']}
"""
from __future__ import annotations

import yaml

from benchbench.errors import UserError

MAX_PLAN_BYTES = 1 << 20   # a plan is a few hundred bytes
MAX_NODES = 10_000   # a plan has a few hundred values
MAX_DEPTH = 32


class _Loader(yaml.SafeLoader):
    """A safe loader that refuses aliases and counts nodes while composing."""

    fname = "<plan>"
    error = UserError

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise self.error(f"{self.fname}:{event.start_mark.line + 1}: the alias *{event.anchor} is not "
                             "allowed in a plan file; write the value out in full")
        self._count = getattr(self, "_count", 0) + 1
        if self._count > MAX_NODES:
            mark = self.peek_event().start_mark
            raise self.error(f"{self.fname}:{mark.line + 1}: more than {MAX_NODES} values; not a plan file")
        return super().compose_node(parent, index)


def _check_tree(root, fname: str, error) -> None:
    """Duplicate keys and nesting depth, checked without recursion."""
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise error(f"{fname}:{node.start_mark.line + 1}: nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, yaml.MappingNode):
            seen = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    line = key.start_mark.line + 1
                    if key.value in seen:
                        raise error(f"{fname}:{line}: duplicate key {key.value!r} (also on line {seen[key.value]}); "
                                    "give each key once")
                    seen[key.value] = line
                stack.append((key, depth + 1))
                stack.append((value, depth + 1))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, depth + 1) for item in node.value)


def load_text(text: str, fname: str, error=UserError):
    """Parse the text of a plan file.

    Args:
        text: the file's content.
        fname: its name, for messages.
        error: the exception type raised for a bad file (a ``UserError`` subclass).

    Returns:
        ``(data, node)``: the Python value (None for an empty file) and the composed node
        tree (for line numbers), or ``(None, None)``.

    Raises:
        error: invalid yaml, an alias, a duplicate key, too many values or too deep
            nesting; one line naming the file and the line.
    """
    loader = _Loader(text)
    loader.fname, loader.error = fname, error
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        _check_tree(node, fname, error)
        return loader.construct_document(node), node
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{fname}:{mark.line + 1}" if mark is not None else fname
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise error(f"{where}: invalid yaml: {problem}") from None
    except RecursionError:
        raise error(f"{fname}: nested too deeply; not a plan file") from None
    finally:
        loader.dispose()
