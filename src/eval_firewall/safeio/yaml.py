"""The bounded YAML reader: a config, a waiver file or a card's front matter, each limited in
size, alias expansion and nesting, with the line of every mapping key.

Every YAML file the tool reads may come with the pull request, so none is read unbounded.
"""

from __future__ import annotations

from typing import Any

import yaml

from ..errors import UserError

KeyLines = dict[int, tuple[dict[Any, Any], dict[Any, int]]]   # id(mapping) -> (mapping, lines)


class _LineLoader(yaml.SafeLoader):
    """A YAML loader that remembers the line of every mapping key."""

    key_lines: KeyLines


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    mapping: dict[Any, Any] = {}
    lines: dict[Any, int] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key '{key}'", key_node.start_mark)
        mapping[key] = loader.construct_object(value_node, deep=True)
        lines[key] = key_node.start_mark.line + 1
    loader.key_lines[id(mapping)] = (mapping, lines)
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


# The config is small: a bigger file, or YAML whose aliases expand to more nodes than this, is
# an attack (a "billion laughs" alias bomb), not a config.
MAX_CONFIG_BYTES = 1 << 20
MAX_CONFIG_YAML_NODES = 10_000


def yaml_nodes(root: yaml.Node | None, limit: int) -> int:
    """How many nodes ``root`` holds once every alias is expanded, counted up to ``limit + 1``
    (more means too many); a recursive alias counts as too many. Counted on the composed node
    graph, where an alias is a shared node, so the count itself takes no memory."""
    if root is None:
        return 0
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        else:
            children = []
        if not children_done:
            if id(node) in open_nodes:
                return limit + 1            # an alias of one of its own ancestors
            open_nodes.add(id(node))
            stack.append((node, True))
            for child in children:
                if id(child) in open_nodes:
                    return limit + 1
                if id(child) not in sizes:
                    stack.append((child, False))
            continue
        open_nodes.discard(id(node))
        sizes[id(node)] = min(limit + 1, 1 + sum(sizes[id(c)] for c in children))
    return sizes[id(root)]


def compose_yaml(loader: yaml.SafeLoader, max_nodes: int) -> yaml.Node | None:
    """The document's node graph, its alias expansion bounded by ``max_nodes``. Raises
    yaml.YAMLError, or ValueError when the document is too big or too deeply nested."""
    try:
        node = loader.get_single_node()
    except RecursionError:
        raise ValueError("the YAML is nested too deeply") from None
    if yaml_nodes(node, max_nodes) > max_nodes:
        raise ValueError(f"the YAML expands (through aliases) to more than {max_nodes} values")
    return node


def construct_yaml(loader: yaml.SafeLoader, node: yaml.Node | None) -> Any:
    """The Python data of a composed node graph (None for an empty document)."""
    if node is None:
        return None
    try:
        return loader.construct_document(node)
    except RecursionError:
        raise ValueError("the YAML is nested too deeply") from None


def load_yaml(loader: yaml.SafeLoader, max_nodes: int) -> Any:
    """compose_yaml, then construct the Python data."""
    return construct_yaml(loader, compose_yaml(loader, max_nodes))


def yaml_error(exc: Exception, source: str) -> UserError:
    """A YAML file that could not be loaded (bad syntax: yaml.YAMLError, with its line; too
    big or too deep: ValueError from :func:`compose_yaml`) as the one-line user error."""
    if not isinstance(exc, yaml.YAMLError):
        return UserError(str(exc), path=source)
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    return UserError(f"invalid YAML: {problem}", path=source,
                     line=mark.line + 1 if mark else None)
