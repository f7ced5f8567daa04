"""The JSON Schema of ``.eval-firewall.yml``, generated from the config models.

Editors (yaml-language-server, SchemaStore) complete and check the config against it. It says
what the loader accepts: size strings (``4GiB``), ``off`` severities (also YAML 1.1's ``off``,
read as false), a string where a list of strings is expected, the alias
``audits.overlap.distribution``, and the rule ids ``severity:`` may name. The loader's own
fields (the config's root and source) are left out; the loader refuses them in a file.

The schema ships in the package (``data/eval-firewall.schema.json``) and in the repository
(``schema/eval-firewall.schema.json``); ``python docs/generate.py`` writes both, and a test
keeps them equal to what :func:`config_schema` returns.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Collection
from importlib import resources
from typing import Any

from pydantic import BaseModel
from pydantic.types import ByteSize

from ..version import __version__
from .model import Config

SCHEMA_FILE = "eval-firewall.schema.json"
DRAFT = "https://json-schema.org/draft/2020-12/schema"
REPOSITORY_RAW = "https://raw.githubusercontent.com/eval-firewall/eval-firewall"
# Fields of the config model that the loader sets; a file may not.
INTERNAL_FIELDS = ("root", "source")


def schema_url(version: str = __version__) -> str:
    """The schema's raw URL in the repository at the version tag ``v{version}``."""
    return f"{REPOSITORY_RAW}/v{version}/schema/{SCHEMA_FILE}"


def _size_pattern() -> str:
    """A size as pydantic's ByteSize reads it: a number and an optional unit, any case."""
    units = sorted(ByteSize.byte_sizes, key=len, reverse=True)
    either = "|".join("".join(f"[{c.lower()}{c.upper()}]" for c in unit) for unit in units)
    return rf"^\s*(\d*\.?\d+)\s*({either})?\s*$"


def _one_or_many_fields(model: type[BaseModel]) -> set[str]:
    """The list fields of ``model`` that also take a single string: a "before" validator
    that turns ``"x"`` into ``["x"]``."""
    found: set[str] = set()
    for decorator in model.__pydantic_decorators__.field_validators.values():
        if decorator.info.mode != "before":
            continue
        for name in decorator.info.fields:
            try:
                func = getattr(decorator.func, "__func__", decorator.func)   # a classmethod's
                if func(model, "x") == ["x"]:
                    found.add(name)
            except Exception:   # a validator that refuses "x" is not one of them
                continue
    return found


def _models(model: type[BaseModel]) -> dict[str, type[BaseModel]]:
    """``model`` and every model its fields hold, by class name (the schema's $defs keys)."""
    out: dict[str, type[BaseModel]] = {}
    stack = [model]
    while stack:
        m = stack.pop()
        if m.__name__ in out:
            continue
        out[m.__name__] = m
        for field in m.model_fields.values():
            for arg in _type_args(field.annotation):
                if isinstance(arg, type) and issubclass(arg, BaseModel):
                    stack.append(arg)
    return out


def _type_args(annotation: Any) -> list[Any]:
    args = [annotation]
    for inner in getattr(annotation, "__args__", ()) or ():
        args.extend(_type_args(inner))
    return args


def _fix(node: Any, size: str) -> None:
    """JSON Schema spellings of what pydantic writes in its own words, in place."""
    if isinstance(node, dict):
        if "gt" in node:
            node["exclusiveMinimum"] = node.pop("gt")
        if node.get("type") == "string" and node.get("pattern") == r"^\s*(\d*\.?\d+)\s*(\w+)?":
            node["pattern"] = size          # ByteSize: only the units it knows
        enum = node.get("enum")
        if isinstance(enum, list) and "off" in enum and False not in enum:
            enum.append(False)              # YAML 1.1 (PyYAML) reads an unquoted off as false
            node.pop("type", None)
        for value in node.values():
            _fix(value, size)
    elif isinstance(node, list):
        for value in node:
            _fix(value, size)


def config_schema(rules: Collection[str] | None = None) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``.eval-firewall.yml``. ``rules``: the rule ids the
    ``severity:`` mapping may name (default: the audits' catalogue)."""
    if rules is None:
        from ..audits import RULES
        rules = RULES
    schema = copy.deepcopy(Config.model_json_schema(mode="validation"))
    for name in INTERNAL_FIELDS:
        schema["properties"].pop(name, None)
    for name, model in _models(Config).items():
        node = schema if model is Config else schema["$defs"][name]
        for field in _one_or_many_fields(model):
            many = node["properties"][field]
            description = many.pop("description", None)
            title = many.pop("title", None)
            default = many.pop("default", None) if "default" in many else ...
            single = {"type": "string", **({"minLength": many["items"]["minLength"]}
                                          if "minLength" in many.get("items", {}) else {})}
            node["properties"][field] = {
                "anyOf": [single, many], **({"title": title} if title else {}),
                **({"description": description} if description else {}),
                **({} if default is ... else {"default": default})}
    schema["properties"]["severity"]["propertyNames"] = {"enum": sorted(rules)}
    _fix(schema, _size_pattern())
    return {"$schema": DRAFT, "$id": schema_url(), **schema,
            "title": ".eval-firewall.yml",
            "description": "The eval-firewall configuration: the datasets to audit, the audits' "
                           "settings and when the run fails."}


def schema_text(schema: dict[str, Any] | None = None) -> str:
    """The schema as the files hold it: sorted keys stay in model order, two-space indent."""
    return json.dumps(config_schema() if schema is None else schema, indent=2,
                      ensure_ascii=False) + "\n"


def packaged_schema() -> str:
    """The schema file shipped in the package."""
    return (resources.files("eval_firewall") / "data" / SCHEMA_FILE).read_text(encoding="utf-8")
