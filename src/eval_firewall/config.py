"""`.eval-firewall.yml`: parsed and validated once into typed objects.

Every error names the file, the line of the offending key and the key itself.
"""

from __future__ import annotations

import difflib
import glob
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, ValidationError,
                      field_validator)

from .errors import UserError
from .findings import Severity

CONFIG_FILE = ".eval-firewall.yml"
DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"

SeverityName = Literal["error", "warning", "notice"]


def _off(value: Any) -> Any:
    """YAML 1.1 reads an unquoted ``off`` as false: take it to mean "off"."""
    return "off" if value is False else value


SeverityOrOff = Annotated[Literal["error", "warning", "notice", "off"], BeforeValidator(_off)]
FailOn = Literal["error", "warning", "notice", "never"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProvenanceFields(_Strict):
    label_source: str | None = None
    verified_by: str | None = None
    generator: str | None = None


class DatasetConfig(_Strict):
    name: str
    role: Literal["train", "eval"]
    paths: list[str] = Field(min_length=1)
    text: list[str] = Field(min_length=1)
    label: str | None = None
    id: str | None = None
    format: Literal["jsonl", "json", "csv", "tsv", "parquet"] | None = None
    provenance: ProvenanceFields | None = None
    card: str | None = None  # dataset card path; default: nearest README.md with front matter

    @field_validator("text", "paths", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


class ExactConfig(_Strict):
    enabled: bool = True


class NearDuplicateConfig(_Strict):
    enabled: bool = True
    threshold: float = Field(0.8, ge=0.0, le=1.0)
    within_eval: bool = True
    candidates: int = Field(10, ge=1, le=1000)


class SemanticConfig(_Strict):
    enabled: bool = True
    model: str = DEFAULT_MODEL
    # scoring "model": a calibrated logistic regression (cosine, neighbourhood margin, number
    # and shared-word evidence) flags a pair at ``probability``; ``threshold`` is the cosine
    # below which no pair is a paraphrase. "cosine": the cosine alone at ``threshold``.
    scoring: Literal["model", "cosine"] = "model"
    threshold: float = Field(0.75, ge=-1.0, le=1.0)  # calibrated: bench/calibrate.py
    probability: float = Field(0.3, ge=0.0, le=1.0)  # calibrated: bench/calibrate.py
    candidates: int = Field(20, ge=1, le=1000)
    retriever: Literal["auto", "static", "exact"] = "auto"
    batch_size: int = Field(64, ge=1)
    same_numbers: bool = True   # numbers as evidence (model), or a veto on other numbers (cosine)


class DistributionConfig(_Strict):
    enabled: bool = True
    severity: SeverityOrOff = "warning"
    max_auc: float = Field(0.6, ge=0.5, le=1.0)
    min_rows: int = Field(50, ge=2)


class OverlapConfig(_Strict):
    enabled: bool = True
    exact: ExactConfig = ExactConfig()
    near_duplicate: NearDuplicateConfig = NearDuplicateConfig()
    semantic: SemanticConfig = SemanticConfig()
    distribution: DistributionConfig = DistributionConfig()


class ProvenanceConfig(_Strict):
    enabled: bool = True
    human_label_sources: list[str] = ["human"]
    allow_generated_eval: bool = False
    missing: SeverityOrOff = "warning"
    missing_per_row: bool = False


class DisagreementConfig(_Strict):
    enabled: bool = True
    annotations: list[str] = []
    max_disagreement: float = Field(0.15, ge=0.0, le=1.0)
    matcher: Literal["auto", "exact", "numeric", "fuzzy", "choice"] = "auto"
    tolerance: float = Field(1e-6, ge=0.0)
    fuzzy_threshold: float = Field(0.85, ge=0.0, le=1.0)
    dataset: str | None = None

    @field_validator("annotations", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


class InvarianceConfig(_Strict):
    enabled: bool = True
    predictions: str | None = None
    command: str | None = None
    max_flip_rate: float = Field(0.1, ge=0.0, le=1.0)
    dataset: str | None = None
    seed: int = 0
    kinds: list[Literal["reorder", "options", "synonym", "preamble", "noise"]] = [
        "reorder", "options", "synonym", "preamble", "noise"]
    matcher: Literal["auto", "exact", "numeric", "fuzzy", "choice"] = "auto"
    timeout: float | None = Field(None, gt=0)


class AuditsConfig(_Strict):
    overlap: OverlapConfig = OverlapConfig()
    provenance: ProvenanceConfig = ProvenanceConfig()
    disagreement: DisagreementConfig = DisagreementConfig()
    invariance: InvarianceConfig = InvarianceConfig()


class Config(_Strict):
    datasets: list[DatasetConfig] = Field(min_length=1)
    audits: AuditsConfig = AuditsConfig()
    fail_on: FailOn = "error"
    fail_on_existing: bool = False
    invalid_rows: SeverityName = "error"
    severity: dict[str, SeverityOrOff] = {}
    # Set by load_config, not by the file:
    root: Path = Path(".")
    source: str = CONFIG_FILE

    def datasets_with_role(self, role: str) -> list[DatasetConfig]:
        return [d for d in self.datasets if d.role == role]

    def dataset(self, name: str) -> DatasetConfig:
        for d in self.datasets:
            if d.name == name:
                return d
        names = ", ".join(d.name for d in self.datasets)
        raise UserError(f"no dataset named '{name}' (datasets: {names})", path=self.source)

    def key_of(self, ds: DatasetConfig, field: str) -> str:
        """A dataset's key as config errors name it, e.g. ``datasets[1].paths``."""
        index = next((i for i, d in enumerate(self.datasets) if d.name == ds.name), ds.name)
        return f"datasets[{index}].{field}"

    def severity_of(self, rule: str, default: Severity) -> Severity | None:
        """The configured severity for ``rule``; None when the rule is turned off."""
        level = self.severity.get(rule)
        if level is None:
            return default
        return None if level == "off" else Severity(level)


class _LineLoader(yaml.SafeLoader):
    """A YAML loader that remembers the line of every mapping key."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict:
    mapping = {}
    lines = {}
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


def _line_of(loc: tuple, data: Any, key_lines: dict) -> tuple[int | None, str]:
    """Follow a pydantic error location into the YAML data; return (line, dotted key)."""
    line, node, parts = None, data, []
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


def parse_config(text: str, *, source: str, root: Path) -> Config:
    loader = _LineLoader(text)
    loader.key_lines = {}
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise UserError(f"invalid YAML: {problem}", path=source,
                        line=mark.line + 1 if mark else None) from None
    finally:
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
    _check_severity_rules(config, data, loader.key_lines)
    return config


def _check_severity_rules(config: Config, data: dict, key_lines: dict) -> None:
    """Every key under ``severity:`` must name a rule an audit can report."""
    from .rules import known_rules

    rules = known_rules()
    for rule in config.severity:
        if rule not in rules:
            line, _ = _line_of(("severity", rule), data, key_lines)
            close = difflib.get_close_matches(rule, rules, n=1)
            hint = f"did you mean '{close[0]}'?" if close else "known rules: " + ", ".join(
                sorted(rules))
            raise UserError("unknown rule", path=config.source, line=line,
                            field=f"severity.{rule}", hint=hint)


def _check_names(config: Config, data: dict, key_lines: dict) -> None:
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
    for directory in (start, *start.parents):
        candidate = directory / CONFIG_FILE
        if candidate.is_file():
            return candidate
        if (directory / ".git").exists():
            break
    raise UserError(f"no {CONFIG_FILE} found in {start} or the repository root above it",
                    hint="pass --config FILE")


def load_config(path: str | Path | None = None, *, root: str | Path | None = None) -> Config:
    """Read and validate a config file. ``root`` defaults to the config file's directory."""
    config_path = Path(path) if path else find_config(Path.cwd())
    if not config_path.is_file():
        raise UserError("config file not found", path=str(path))
    root_path = Path(root).resolve() if root else config_path.resolve().parent
    try:
        text = config_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read config: {exc}", path=str(config_path)) from None
    return parse_config(text, source=_display(config_path, root_path), root=root_path)


def _display(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return str(path)


def resolve_paths(config: Config, dataset: DatasetConfig) -> list[Path]:
    """The files a dataset's globs match, sorted; a glob that matches nothing is an error."""
    files: list[Path] = []
    for pattern in dataset.paths:
        matched = sorted(
            Path(p) for p in glob.glob(str(config.root / pattern), recursive=True)
            if Path(p).is_file()
        )
        if not matched:
            raise UserError(f"glob '{pattern}' matches no file", path=config.source,
                            field=config.key_of(dataset, "paths"))
        files.extend(m for m in matched if m not in files)
    return files
