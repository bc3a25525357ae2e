"""``procrunner.yml`` read safely: a malformed, too deeply nested or alias-bombed document is
one user error, never a traceback or a hang (``repr`` of a billion-laughs value never ends)."""

from __future__ import annotations

import yaml

from procrunner.errors import ProcrunnerError

MAX_VALUES = 10_000  # nodes after expanding aliases; a settings file needs a few hundred


def read_yaml(text: str, where: str) -> tuple[object, dict[tuple[str, ...], int]]:
    """The document, and the line of each mapping key by its key path; ``where`` names the
    file in errors."""
    data, node = _load(text, where)
    lines: dict[tuple[str, ...], int] = {}
    _key_lines(node, (), lines)
    return data, lines


def _key_lines(node: yaml.Node | None, path: tuple[str, ...], lines: dict[tuple[str, ...], int]
               ) -> None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                name = _key_name(key)
                lines[(*path, name)] = key.start_mark.line + 1
                _key_lines(value, (*path, name), lines)


def _key_name(key: yaml.ScalarNode) -> str:
    """A key as the loaded document spells it (``str(None)`` for ``~``, ``True`` for
    ``true``), so that every key, even an odd one, is found with its line."""
    return str(yaml.SafeLoader("").construct_object(key))


def _load(text: str, where: str) -> tuple[object, yaml.Node | None]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is not None:
            _check_size(node, where)
        return yaml.safe_load(text), node
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        line = mark.line + 1 if mark is not None else None
        if isinstance(exc, yaml.reader.ReaderError):  # a control character: no mark, a position
            line = text.count("\n", 0, exc.position) + 1
        raise ProcrunnerError(f"malformed YAML: {problem}", where, line) from None
    except RecursionError:
        raise ProcrunnerError("nested too deeply to be a settings file", where) from None


def _check_size(root: yaml.Node, where: str) -> None:
    """Count the values the document expands to (aliases counted each time they are used),
    without expanding it: each node's size once, by an iterative post-order walk."""
    sizes: dict[int, int] = {}
    walking: set[int] = set()  # the nodes on the current path: an alias back to one is a loop
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        children = _children(node)
        if children_done:
            walking.discard(id(node))
            sizes[id(node)] = 1 + sum(sizes[id(child)] for child in children)
            if sizes[id(node)] > MAX_VALUES:
                raise ProcrunnerError(
                    f"the document expands to over {MAX_VALUES} values (YAML aliases?)",
                    where, node.start_mark.line + 1,
                )
        elif id(node) not in sizes:
            if any(id(child) in walking or child is node for child in children):
                raise ProcrunnerError("a YAML alias refers to itself", where,
                                      node.start_mark.line + 1)
            walking.add(id(node))
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in sizes)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []
