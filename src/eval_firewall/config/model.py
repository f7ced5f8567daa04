"""The config's top-level models: the datasets, the limits, the waivers' entries and the
:class:`Config` that holds them with the audits' sections."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ByteSize, ConfigDict, Field, PrivateAttr, StringConstraints, field_validator

from ..errors import UserError
from ..findings import FINGERPRINT_CHARS, SHORT_ID_CHARS, Severity
from ..rules import Rule
from .audits import AuditsConfig
from .base import CONFIG_FILE, FailOn, SeverityName, SeverityOrOff, _Strict

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
FingerprintText = Annotated[str, StringConstraints(
    strip_whitespace=True, to_lower=True,
    pattern=rf"^[0-9a-fA-F]{{{SHORT_ID_CHARS},{FINGERPRINT_CHARS}}}$")]


class ProvenanceFields(_Strict):
    label_source: str | None = Field(
        default=None,
        description="Dotted path of the field saying who wrote the label (e.g. `human`, `model`, `gpt-4o`).")
    verified_by: str | None = Field(
        default=None,
        description="Dotted path of the field naming who verified the label, if anyone.")
    generator: str | None = Field(
        default=None,
        description="Dotted path of the field naming the model that generated the row, if any.")


class DatasetConfig(_Strict):
    name: str = Field(
        description="Unique name, used in reports.")
    role: Literal["train", "eval"] = Field(
        description="`train` or `eval`. Eval rows are audited against train rows.")
    paths: list[str] = Field(
        min_length=1,
        description=(
            "Glob pattern or list of them, relative to the config file (`**` matches folders). Each must "
            "match at least one file inside the repository."))
    text: list[str] = Field(
        min_length=1,
        description=(
            "Field or list of fields (dotted paths, e.g. `turns.0.content`) joined with a newline to form the "
            "compared text. A row missing one is an `invalid-row` finding, as is a row whose text, label, id "
            "or provenance holds half of a surrogate pair (a JSON escape such as `\\ud800` that is no Unicode "
            "text); a CSV/TSV/Parquet file missing the column is an error."))
    label: str | None = Field(
        default=None,
        description="The label (gold answer) field. Default: none.")
    id: str | None = Field(
        default=None,
        description=(
            "Field holding a stable row id; ids must be unique (`duplicate-id`). Default: the row's location "
            "(`path:line`)."))
    format: Literal["jsonl", "json", "csv", "tsv", "parquet"] | None = Field(
        default=None,
        description=(
            "`jsonl` (`.jsonl`, `.ndjson`, also gzipped), `json` (an array of objects), `csv`, `tsv`, "
            "`parquet`. Default: from the file extension."))
    provenance: ProvenanceFields | None = Field(
        default=None,
        description=(
            "Where each row says it came from: dotted paths of `label_source`, `verified_by`, `generator`. "
            "Default: none."))
    card: str | None = Field(
        default=None,
        description=(
            "Dataset card (a `README.md` with YAML front matter, as on the Hugging Face Hub). Default: the "
            "nearest `README.md` with front matter."))

    @field_validator("text", "paths", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


class LimitsConfig(_Strict):
    """Bounds on every input a pull request can change (docs: Limits and containment)."""

    max_file_bytes: ByteSize = Field(
        default=ByteSize(4 * 2**30), gt=0,
        description=(
            "Bytes of one file, after gzip decompression (a Parquet file: its size on disk, the "
            "uncompressed size its row groups declare, and its rows' decoded size, counted from lengths "
            "and dictionary indices before any value is copied); past it, one error line naming the file. Also the "
            "memory bound of JSON arrays and annotation sheets, which are read whole."))
    max_row_bytes: ByteSize = Field(
        default=ByteSize(16 * 2**20), gt=0,
        description=(
            "Bytes of one line (JSONL, CSV/TSV), of one CSV field and of one Parquet row (its cells, "
            "decoded; a larger row is an `invalid-row`, never copied); a longer line is an `invalid-row` (an "
            "error in a predictions file or annotation sheet). Also bounds a card's front matter."))
    max_json_depth: int = Field(
        default=100, ge=1, le=500,
        description="Nesting of arrays/objects in one JSON row; deeper is an `invalid-row`.")
    max_files_per_glob: int = Field(
        default=10_000, ge=1,
        description="Files one glob may match; more is an error naming the key.")
    max_remote_files: int = Field(
        default=10_000, ge=1,
        description="Objects one train URL glob may match (object storage, the Hub); more is an "
                    "error naming the key.")
    max_yaml_nodes: int = Field(
        default=100_000, ge=1,
        description="Values a card's YAML front matter may expand to through aliases.")


INDEX_SCHEMES = ("s3", "gs", "gcs", "file")     # where an index can be written and listed


class IndexConfig(_Strict):
    """Where the train index lives besides the cache directory (docs: Large train sets)."""

    location: str | None = Field(
        default=None,
        description=(
            "A URL prefix (`s3://bucket/prefix`, `gs://...`, `file:///...`) holding the train index, "
            "built there by `eval-firewall index build` in a trusted job and read by `audit` a chunk "
            "file at a time (only what a search needs). Only `s3://`, `gs://`, `gcs://` and "
            "`file://` (an absolute folder outside the repository), with no credentials, query "
            "string or fragment: credentials come from the client's environment. Part of the "
            "gate's policy: a pull request that sets, changes or removes it is pending until "
            "approved. Default: the index lives in the cache directory only."))


class WaiverEntry(BaseModel):
    """One entry of the waiver file (or of the config's ``waivers:`` list)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fingerprint: FingerprintText = Field(
        description="The finding's fingerprint, or its short id (the first 8 characters).")
    reason: Text = Field(description="Why the finding is accepted.")
    approved_by: Text = Field(description="Who approved the waiver.")
    expires: dt.date | None = Field(
        default=None, description="Last day the waiver holds (YYYY-MM-DD). Default: no end.")


class Config(_Strict):
    datasets: list[DatasetConfig] = Field(
        min_length=1,
        description="The datasets to audit; at least one has role `eval`.")
    audits: AuditsConfig = Field(
        default=AuditsConfig(),
        description="The audits' settings; every audit runs with its defaults unless turned off.")
    fail_on: FailOn = Field(
        default="error",
        description="Lowest severity that fails the run (exit 1); `never` always passes. `--fail-on` overrides it.")
    fail_on_existing: bool = Field(
        default=False,
        description="With `--base`: findings already present at the base revision fail the run too.")
    invalid_rows: SeverityName = Field(
        default="error",
        description=(
            "Severity of `invalid-row` and `empty-text` findings. A file's first 1,000 unreadable rows are "
            "each a finding, fingerprinted by the row's bytes; the rest are one more `invalid-row`, \"N more "
            "unreadable rows in FILE\", with a fingerprint of its own over all their bytes."))
    severity: dict[str, SeverityOrOff] = Field(
        default={},
        description=(
            "Severity per rule id: `error`, `warning`, `notice`, or `off` to drop the rule. An unknown rule "
            "id is an error."))
    waivers: list[WaiverEntry] = Field(
        default=[],
        description="Accepted findings (also read from `.eval-firewall-waivers.yml` next to the config).")
    limits: LimitsConfig = Field(
        default=LimitsConfig(),
        description="Bounds on every input a pull request can change.")
    index: IndexConfig = Field(
        default=IndexConfig(),
        description="The train index's shared location (object storage), for train sets too large for a CI cache.")
    # Set by load_config, not by the file:
    root: Path = Field(
        default=Path("."),
        description="Set by the loader: the config's folder. Not a key of the file.")
    source: str = Field(
        default=CONFIG_FILE,
        description="Set by the loader: the config file's name in messages. Not a key of the file.")
    _key_lines: dict[str, int] = PrivateAttr(default_factory=dict)  # "datasets[1].paths" -> 9

    def line_of(self, key: str) -> int | None:
        """The line of a key in the config file (as :meth:`key_of` names it), when known."""
        return self._key_lines.get(key)

    def datasets_with_role(self, role: str) -> list[DatasetConfig]:
        """The datasets with this role, in config order."""
        return [d for d in self.datasets if d.role == role]

    def dataset(self, name: str) -> DatasetConfig:
        """The dataset of this name; a user error naming the others when there is none."""
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

    def severity_for(self, rule: Rule) -> Severity | None:
        """A rule's severity: ``severity:`` first, then the rule's own key (``invalid_rows``,
        ``audits.provenance.missing``...), then its default; None when it is turned off."""
        default: str = rule.default_severity.value
        if rule.severity_key is not None:
            value: Any = self
            for part in rule.severity_key.split("."):
                value = getattr(value, part)
            default = value
        level = self.severity.get(rule.id, default)
        return None if level == "off" else Severity(level)
