"""``eval-firewall selftest``: what the overlap audit catches on the user's own data.

Copies of a sample of the user's own eval rows are planted, each changed one way (a *kind*),
into a scratch copy of a bounded sample of their train rows, in a temporary directory; the
real overlap audit (:func:`eval_firewall.engine.run_audits`, the configured overlap settings)
then runs twice on the scratch repository: once before planting (eval rows it flags then are
real overlaps already in the user's data and are left out of both measures) and once after.
Recall per kind counts planted rows flagged against their planted copy; "clean rows flagged"
counts unplanted rows flagged after planting. Nothing in the user's repository is written.

Kinds: exact copy, re-wrapped lines, case and punctuation, Unicode tricks (homoglyphs,
zero-width and no-break spaces), embedded in a long document of other train rows without and
with the eval row's label, truncated (the first two thirds of the words), sentences shuffled,
and the invariance audit's rewordings (:mod:`eval_firewall.inputs.perturb`: synonyms, an irrelevant
preamble, whitespace noise).
"""

from __future__ import annotations

import json
import random
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..audits import AUDITS
from ..config import Config, load_config
from ..engine import load_all, run_audits
from ..errors import UserError
from ..inputs import perturb
from ..progress import Progress
from ..rows import Row

DEFAULT_EVAL_ROWS = 200
DEFAULT_TRAIN_ROWS = 5000
PLANTED_SHARE = 2 / 3          # of the sampled eval rows; the rest stay clean
DOCUMENT_ROWS = 4              # other train rows around an embedded copy

_HOMOGLYPHS = str.maketrans({"a": "\u0430", "e": "\u0435", "o": "\u043e", "p": "\u0440",
                             "c": "\u0441", "x": "\u0445"})
_PUNCT = re.compile(r"[.,;:!?\"'()]")


def _rewrap(text: str, rng: random.Random) -> str:
    words = text.split()
    lines, at = [], 0
    while at < len(words):
        step = rng.randint(5, 9)
        lines.append(" ".join(words[at:at + step]))
        at += step
    return "\n".join(lines)


def _case_punct(text: str, rng: random.Random) -> str:
    return _PUNCT.sub("", text).upper() if rng.random() < 0.5 else _PUNCT.sub("", text).lower()


def _unicode(text: str, rng: random.Random) -> str:
    out = text.translate(_HOMOGLYPHS)
    words = out.split(" ")
    for k in range(1, len(words), 3):
        words[k] = words[k][:1] + "\u200b" + words[k][1:]
    return "\u00a0".join(words)


def _truncate(text: str, rng: random.Random) -> str | None:
    words = text.split()
    if len(words) < 9:
        return None
    return " ".join(words[:max(6, (2 * len(words)) // 3)])


def _shuffle_sentences(text: str, rng: random.Random) -> str | None:
    sentences = perturb.split_sentences(" ".join(text.split()))
    if len(sentences) < 2:
        return None
    order = list(range(len(sentences)))
    while order == sorted(order):
        rng.shuffle(order)
    return " ".join(sentences[k] for k in order)


def _invariance(kind: str) -> Callable[[Row, random.Random], str | None]:
    def make(row: Row, rng: random.Random) -> str | None:
        made = perturb.variants(row, seed=rng.randint(0, 2**31), kinds=(kind,))
        return made[0].prompt if made else None
    return make


Context = tuple[Row, random.Random, list[str]]   # the eval row, its generator, filler texts


def _document(with_label: bool) -> Callable[[Context], str | None]:
    def make(ctx: Context) -> str | None:
        row, rng, filler = ctx
        if with_label and not row.label:
            return None
        item = row.text + (f"\nAnswer: {row.label}" if with_label else "")
        parts = list(filler)
        parts.insert(rng.randint(0, len(parts)), item)
        return "\n\n".join(parts)
    return make


def _plain(change: Callable[[str, random.Random], str | None]) -> Callable[[Context], str | None]:
    return lambda ctx: change(ctx[0].text, ctx[1])


def _of_row(change: Callable[[Row, random.Random], str | None]
            ) -> Callable[[Context], str | None]:
    return lambda ctx: change(ctx[0], ctx[1])


# kind -> how a planted copy is made (None where the kind cannot apply to a row)
KINDS: dict[str, Callable[[Context], str | None]] = {
    "exact": _plain(lambda text, rng: text),
    "re-wrapped": _plain(_rewrap),
    "case and punctuation": _plain(_case_punct),
    "unicode tricks": _plain(_unicode),
    "in a document": _document(with_label=False),
    "in a document, with answer": _document(with_label=True),
    "truncated": _plain(_truncate),
    "sentences shuffled": _plain(_shuffle_sentences),
    "reworded (synonyms)": _of_row(_invariance("synonym")),
    "preamble added": _of_row(_invariance("preamble")),
    "whitespace noise": _of_row(_invariance("noise")),
}


@dataclass(frozen=True)
class KindResult:
    """One kind of planted copy: how many rows got it, how many the audit found."""

    kind: str
    planted: int
    found: int

    @property
    def recall(self) -> float | None:
        """Found / planted (None when no row could get this kind)."""
        return self.found / self.planted if self.planted else None


@dataclass(frozen=True)
class SelftestResult:
    """What ``eval-firewall selftest`` prints."""

    eval_rows: int                   # sampled
    train_rows: int                  # in the scratch train set before planting
    kinds: list[KindResult]
    clean: int                       # unplanted rows (not flagged before planting)
    clean_flagged: int
    already_flagged: int             # flagged before planting: real overlaps, left out


def selftest(config: Config, *, eval_rows: int = DEFAULT_EVAL_ROWS,
             train_rows: int = DEFAULT_TRAIN_ROWS, seed: int = 0,
             progress: Progress | None = None) -> SelftestResult:
    """Plant changed copies of sampled eval rows into a scratch train sample; audit; count."""
    progress = progress or Progress(enabled=False)
    if not config.audits.overlap.enabled:
        raise UserError("the overlap audit is disabled (audits.overlap.enabled: false): "
                        "nothing to test", path=config.source)
    loaded = load_all(config, progress)
    evals = [r for d in loaded.values() if d.role == "eval" for r in d.rows]
    train = [r for d in loaded.values() if d.role == "train" for r in d.rows]
    if not evals or not train:
        raise UserError("selftest needs eval rows and train rows", path=config.source)
    rng = random.Random(seed)
    sample = rng.sample(evals, min(eval_rows, len(evals)))
    train_sample = rng.sample(train, min(train_rows, len(train)))
    train_texts = [r.text for r in train_sample]
    planted_count = round(len(sample) * PLANTED_SHARE)
    names = list(KINDS)
    planted: dict[int, tuple[str, str]] = {}      # eval index -> (kind, planted text)
    for k, row in enumerate(sample[:planted_count]):
        for step in range(len(names)):           # the row's kind, or the next that applies
            kind = names[(k + step) % len(names)]
            row_rng = random.Random(f"{seed}\x1f{k}\x1f{kind}")
            filler = row_rng.sample(train_texts, min(DOCUMENT_ROWS, len(train_texts)))
            text = KINDS[kind]((row, row_rng, filler))
            if text and text != "":
                planted[k] = (kind, text)
                break
    with tempfile.TemporaryDirectory(prefix="eval-firewall-selftest-") as tmp:
        root = Path(tmp)
        _write(root / "eval.jsonl", [(f"e{k}", r.text, r.label) for k, r in enumerate(sample)])
        base_train = [(f"t{j}", t, None) for j, t in enumerate(train_texts)]
        extra = [(f"p{k}", text, None) for k, (_, text) in sorted(planted.items())]
        before = _flagged(root, "before", config, base_train, progress)
        after = _flagged(root, "after", config, base_train + extra, progress)
    kinds = []
    for kind in names:
        mine = [k for k, (kk, _) in planted.items() if kk == kind and f"e{k}" not in before]
        kinds.append(KindResult(kind, len(mine),
                                sum(1 for k in mine if after.get(f"e{k}") == f"p{k}")))
    clean = [k for k in range(len(sample)) if k not in planted and f"e{k}" not in before]
    return SelftestResult(len(sample), len(train_texts), kinds, len(clean),
                          sum(1 for k in clean if f"e{k}" in after),
                          sum(1 for k in range(len(sample)) if f"e{k}" in before))


def _write(path: Path, rows: Sequence[tuple[str, str, str | None]]) -> None:
    with path.open("w", encoding="utf-8") as out:
        for row_id, text, label in rows:
            out.write(json.dumps({"id": row_id, "text": text, "label": label},
                                 ensure_ascii=False) + "\n")


def _flagged(root: Path, name: str, config: Config, train: Sequence[tuple[str, str, None]],
             progress: Progress) -> dict[str, str]:
    """Run the real overlap audit on a scratch repository: eval row id -> flagged train id."""
    folder = root / name
    folder.mkdir()
    (folder / "eval.jsonl").write_text((root / "eval.jsonl").read_text(encoding="utf-8"),
                                       encoding="utf-8")
    _write(folder / "train.jsonl", train)
    overlap = config.audits.overlap.model_dump(mode="json", exclude={"distribution"})
    settings = {"datasets": [
        {"name": "train", "role": "train", "paths": ["train.jsonl"], "text": ["text"],
         "id": "id"},
        {"name": "eval", "role": "eval", "paths": ["eval.jsonl"], "text": ["text"],
         "label": "label", "id": "id"}],
        "audits": {"overlap": overlap}}
    (folder / ".eval-firewall.yml").write_text(json.dumps(settings), encoding="utf-8")
    scratch = load_config(folder / ".eval-firewall.yml")
    only = tuple(a for a in AUDITS if a.name == "overlap")
    with progress.stage(f"overlap audit, {name} planting"):
        report = run_audits(scratch, cache_dir=None, audits=only)
    return {f.row_id: f.match.row_id for f in report.findings
            if f.audit == "overlap" and f.rule != "eval-duplicate" and f.match is not None
            and f.row_id is not None}
