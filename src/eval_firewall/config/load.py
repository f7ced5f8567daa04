"""Loading a config: the file found, read (bounded) and parsed, every error named by file, line
and key, and every path it names kept inside the repository."""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Collection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import ValidationError

from ..errors import UserError
from ..safeio import paths as containment
from ..safeio.read import read_committed
from ..safeio.yaml import MAX_CONFIG_BYTES, MAX_CONFIG_YAML_NODES, KeyLines, _LineLoader, load_yaml, yaml_error
from .base import CONFIG_FILE
from .model import INDEX_SCHEMES, Config, DatasetConfig

Location = tuple[str | int, ...]                                 # a key path: ("datasets", 1)


def _line_of(loc: Location, data: Any, key_lines: KeyLines) -> tuple[int | None, str]:
    """Follow a pydantic error location into the YAML data; return (line, dotted key)."""
    line: int | None = None
    node = data
    parts: list[str] = []
    for part in loc:
        if isinstance(node, dict) and part in node:
            entry = key_lines.get(id(node))
            if entry:
                line = entry[1].get(part, line)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
            entry = key_lines.get(id(node)) if isinstance(node, dict) else None
            if entry and entry[1]:
                line = min(entry[1].values())  # the list item's first key
        else:
            parts.append(str(part))
            break
        parts.append(f"[{part}]" if isinstance(part, int) else str(part))
    dotted = ".".join(parts).replace(".[", "[")
    return line, dotted


def parse_config(text: str, *, source: str, root: Path,
                 rules: Collection[str] | None = None) -> Config:
    """Parse and validate a config's text. ``rules``: the rule ids its ``severity:`` keys may
    name (the audits' catalogue, ``eval_firewall.audits.RULES``); None leaves them to be
    checked by whoever runs the audits (:func:`check_severity_rules`)."""
    loader = None
    try:
        loader = _LineLoader(text)      # reads the stream: it can reject a character already
        loader.key_lines = {}
        data = load_yaml(loader, MAX_CONFIG_YAML_NODES)
    except (yaml.YAMLError, ValueError) as exc:
        raise yaml_error(exc, source) from None
    finally:
        if loader is not None:
            loader.dispose()
    if not isinstance(data, dict):
        raise UserError("the config must be a mapping with a 'datasets' key", path=source, line=1)
    for reserved in ("root", "source"):
        if reserved in data:
            line = loader.key_lines.get(id(data), ({}, {}))[1].get(reserved)
            raise UserError("unknown key", path=source, line=line, field=reserved)
    try:
        config = Config.model_validate({**data, "root": root, "source": source})
    except ValidationError as exc:
        err = exc.errors()[0]
        line, dotted = _line_of(err["loc"], data, loader.key_lines)
        kind = err["type"]
        if kind == "extra_forbidden":
            message = "unknown key"
        elif kind == "missing":
            message = "required key is missing"
        else:
            message = err["msg"]
            if "input" in err and not isinstance(err["input"], (dict, list)):
                message += f" (got {err['input']!r})"
        raise UserError(message, path=source, line=line, field=dotted) from None
    _check_names(config, data, loader.key_lines)
    _check_aliases(config, data, loader.key_lines)
    config._key_lines = _key_lines(data, loader.key_lines)
    if rules is not None:
        check_severity_rules(config, rules)
    _check_paths(config, data, loader.key_lines)
    _check_index(config, data, loader.key_lines)
    return config


def _key_lines(node: Any, key_lines: KeyLines, prefix: str = "") -> dict[str, int]:
    """Every key of the parsed YAML as a dotted key (``datasets[1].paths``) with its line."""
    out: dict[str, int] = {}
    if isinstance(node, dict):
        lines = key_lines.get(id(node), ({}, {}))[1]
        for key, value in node.items():
            dotted = f"{prefix}.{key}" if prefix else str(key)
            if key in lines:
                out[dotted] = lines[key]
            out.update(_key_lines(value, key_lines, dotted))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out.update(_key_lines(value, key_lines, f"{prefix}[{i}]"))
    return out


def _path_keys(config: Config) -> list[tuple[Location, str, list[str]]]:
    """(location in the YAML, dotted key, values) of every key that names files to read."""
    keys: list[tuple[Location, str, list[str]]] = []
    for i, ds in enumerate(config.datasets):
        keys.append((("datasets", i, "paths"), f"datasets[{i}].paths", ds.paths))
        if ds.card is not None:
            keys.append((("datasets", i, "card"), f"datasets[{i}].card", [ds.card]))
    disagreement, invariance = config.audits.disagreement, config.audits.invariance
    keys.append((("audits", "disagreement", "annotations"), "audits.disagreement.annotations",
                 disagreement.annotations))
    if invariance.predictions is not None:
        keys.append((("audits", "invariance", "predictions"), "audits.invariance.predictions",
                     [invariance.predictions]))
    return keys


def _check_paths(config: Config, data: dict[str, Any], key_lines: KeyLines) -> None:
    """Every path the config names stays inside the repository (paths.py); remember each
    key's line for the errors raised later, when globs are expanded."""
    boundary = containment.repository_root(config.root)
    for loc, dotted, values in _path_keys(config):
        line, _ = _line_of(loc, data, key_lines)
        if line is not None:
            config._key_lines[dotted] = line
        for value in values:
            if _is_url(value):
                why = _url_refusal(config, dotted, value)
                if why:
                    raise UserError(why, path=config.source, line=line, field=dotted)
                continue
            why = containment.refusal(value, config.root, boundary)
            if why:
                raise UserError(f"{why} (got '{containment.shorten(value)}')", path=config.source,
                                line=line, field=dotted)


def _is_url(value: str) -> bool:
    from ..datasets.remote import is_url

    return is_url(value)


def _url_refusal(config: Config, dotted: str, value: str) -> str | None:
    """A URL is allowed only in a train dataset's ``paths`` (datasets/remote.py)."""
    from ..datasets.remote import public_url, refusal

    match = re.fullmatch(r"datasets\[(\d+)\]\.paths", dotted)
    if match is None or config.datasets[int(match.group(1))].role != "train":
        return (f"a URL is allowed only in a train dataset's paths: eval datasets and other "
                f"files stay in the repository (got '{containment.shorten(public_url(value))}')")
    return refusal(value)


def _check_index(config: Config, data: dict[str, Any], key_lines: KeyLines) -> None:
    """``index.location`` is a URL where an index can be written and listed, outside the
    repository (a pull request could commit files into a folder inside it)."""
    value = config.index.location
    if value is None:
        return
    line, _ = _line_of(("index", "location"), data, key_lines)
    why = _index_refusal(value, containment.repository_root(config.root))
    if why:
        raise UserError(why, path=config.source, line=line, field="index.location")


def _index_refusal(value: str, boundary: Path) -> str | None:
    from ..datasets.remote import refusal

    schemes = ", ".join(s + "://" for s in INDEX_SCHEMES)
    if not _is_url(value):
        return (f"the index location must be a URL ({schemes}), outside the repository "
                f"(got '{containment.shorten(value)}')")
    scheme, _, rest = value.partition("://")
    if scheme.lower() not in INDEX_SCHEMES:
        return (f"an index cannot be written or listed at {containment.shorten(scheme, 20)}:// "
                f"URLs (use one of {schemes})")
    if scheme not in INDEX_SCHEMES:
        return f"write the URL scheme in lower case ({scheme.lower()}://)"
    why = refusal(value)
    if why:
        return why
    if any(unicodedata.category(c) in ("Cc", "Cf") for c in value):   # urlsplit drops \n, \t
        return "a URL must not hold control or invisible (format) characters"
    shown = containment.shorten(value)          # no credentials, query or fragment: refused
    if scheme != "file":
        return None if urlsplit(value).netloc else f"the URL names no bucket (got '{shown}')"
    if not rest.startswith("/"):                # fsspec reads file://host/x as a relative path
        return f"a file:// URL is absolute, with no host: file:///path (got '{shown}')"
    try:
        folder = Path(rest).resolve()           # as fsspec opens it: literally, links followed
    except (OSError, RuntimeError, ValueError) as exc:     # a loop of links, a NUL
        return f"cannot resolve the folder: {type(exc).__name__} (got '{shown}')"
    if folder == boundary or boundary in folder.parents or folder in boundary.parents:
        return (f"the index location must be outside the repository (and not hold it): a pull "
                f"request could commit files there (got '{shown}')")
    return None


def _check_aliases(config: Config, data: dict[str, Any], key_lines: KeyLines) -> None:
    """A section and its alias are not both given."""
    audits = data.get("audits")
    overlap = audits.get("overlap") if isinstance(audits, dict) else None
    if isinstance(audits, dict) and isinstance(overlap, dict) and "distribution" in overlap \
            and "distribution" in audits:
        line, _ = _line_of(("audits", "overlap", "distribution"), data, key_lines)
        raise UserError("'audits.distribution' is given too: set one of them", path=config.source,
                        line=line, field="audits.overlap.distribution",
                        hint="audits.overlap.distribution is the alias of audits.distribution")


def check_severity_rules(config: Config, rules: Collection[str]) -> None:
    """Every key under ``severity:`` must name a rule an audit can report (one of ``rules``)."""
    for rule in config.severity:
        if rule not in rules:
            line = config.line_of(f"severity.{rule}")
            close = difflib.get_close_matches(rule, list(rules), n=1)
            hint = f"did you mean '{close[0]}'?" if close else "known rules: " + ", ".join(
                sorted(rules))
            raise UserError("unknown rule", path=config.source, line=line,
                            field=f"severity.{rule}", hint=hint)


def _check_names(config: Config, data: dict[str, Any], key_lines: KeyLines) -> None:
    seen: set[str] = set()
    for i, ds in enumerate(config.datasets):
        if ds.name in seen:
            line, _ = _line_of(("datasets", i, "name"), data, key_lines)
            raise UserError(f"duplicate dataset name '{ds.name}'", path=config.source, line=line,
                            field=f"datasets[{i}].name")
        seen.add(ds.name)
    for role in ("eval",):
        if not config.datasets_with_role(role):
            raise UserError(f"no dataset has role '{role}'", path=config.source, field="datasets")
    for which in ("disagreement", "invariance"):
        name = getattr(config.audits, which).dataset
        if name and name not in seen:
            line, _ = _line_of(("audits", which, "dataset"), data, key_lines)
            raise UserError(f"no dataset named '{name}'", path=config.source, line=line,
                            field=f"audits.{which}.dataset")


def find_config(start: Path) -> Path:
    """The config file at the repository root above ``start`` (or in ``start`` itself)."""
    start = start.resolve()
    top = containment.work_tree(start)
    for directory in (start, *start.parents):
        candidate = directory / CONFIG_FILE
        if candidate.is_file():
            return candidate
        if directory == top:
            break
    raise UserError(f"no {CONFIG_FILE} found in {start} or the repository root above it",
                    hint="pass --config FILE")


def load_config(path: str | Path | None = None, *, root: str | Path | None = None,
                rules: Collection[str] | None = None) -> Config:
    """Read and validate a config file. ``root`` defaults to the config file's directory;
    ``rules`` as for :func:`parse_config`."""
    config_path = Path(path) if path else find_config(Path.cwd())
    if not config_path.is_file():
        raise UserError("config file not found", path=str(path))
    # The config comes with the pull request: a link out of its repository (or into .git/) is
    # never followed, and it is read no further than a config can be long.
    why = containment.contained(config_path, containment.repository_root(
        Path(root) if root else config_path.absolute().parent))
    if why:
        raise UserError(f"the config file {why}", path=str(path or config_path))
    root_path = Path(root).resolve() if root else config_path.resolve().parent
    text = read_committed(config_path, MAX_CONFIG_BYTES, what="config", display=str(config_path))
    return parse_config(text, source=_display(config_path, root_path), root=root_path,
                        rules=rules)


def _display(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return str(path)


def resolve_paths(config: Config, dataset: DatasetConfig) -> list[Path]:
    """The files a dataset's globs match, sorted, each inside the repository (paths.py); a
    glob that matches nothing is an error. URLs are left out (:func:`resolve_remote`)."""
    key = config.key_of(dataset, "paths")
    boundary = containment.repository_root(config.root)
    files: list[Path] = []
    for pattern in dataset.paths:
        if _is_url(pattern):
            continue                    # remote files: resolve_remote
        matched = containment.glob_files(
            pattern, config.root, max_files=config.limits.max_files_per_glob,
            source=config.source, line=config.line_of(key), field=key, boundary=boundary)
        if not matched:
            key = config.key_of(dataset, "paths")
            raise UserError(f"glob '{pattern}' matches no file", path=config.source,
                            line=config.line_of(key), field=key)
        files.extend(m for m in matched if m not in files)
    return files


def with_model_path(config: Config, path: Path) -> Config:
    """``config`` with the semantic model loaded from ``path``, a directory a trusted source
    named (the command line, an action input): never one from the repository's config."""
    semantic = config.audits.overlap.semantic.model_copy(
        update={"model": str(Path(path).expanduser().resolve())})
    overlap = config.audits.overlap.model_copy(update={"semantic": semantic})
    return config.model_copy(update={"audits": config.audits.model_copy(
        update={"overlap": overlap})})


def resolve_remote(config: Config, dataset: DatasetConfig) -> list[Any]:
    """The remote files (:class:`~eval_firewall.datasets.remote.RemoteFile`) a train dataset's
    URLs name, in the order of ``paths``, each with its version."""
    from ..datasets.remote import list_files

    key = config.key_of(dataset, "paths")
    out: list[Any] = []
    seen: set[str] = set()
    for pattern in dataset.paths:
        if not _is_url(pattern):
            continue
        for f in list_files(pattern, max_files=config.limits.max_remote_files,
                            source=config.source, line=config.line_of(key), field=key):
            if f.url not in seen:
                seen.add(f.url)
                out.append(f)
    return out
