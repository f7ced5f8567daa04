"""Invariance: does the model's answer survive rephrasings that keep the meaning?

Given the original prompts and their variants (:mod:`eval_firewall.inputs.perturb`) and the model's
predictions for each, report accuracy on the originals and on each perturbation kind, and the
flip rate: the share of variants whose answer differs from the answer to the original (for
reordered options, the chosen option is compared, not its letter).

Rules:
- ``invariance-flip-rate``: the flip rate exceeds ``max_flip_rate`` (error).
- ``answer-flip``: one variant whose answer differs from the original's (notice).
- ``missing-prediction``: prompts with no prediction (warning).
- ``unknown-prediction``: predictions for no current prompt (warning).
- ``stale-prediction``: predictions made for an older prompt text (warning; not compared).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import replace
from difflib import SequenceMatcher

from ..config import InvarianceConfig
from ..findings import AuditResult, Finding, Match, Severity, Stat
from ..inputs import Inputs, Predicted
from ..inputs.perturb import KINDS, ORIGINAL
from ..records import Prediction, Variant
from ..rules import Noun, Rule
from ..text.matching import Matcher, choice_letter, make_matcher
from .stats import rate_gate

AUDIT = "invariance"

RULES = (
    Rule("invariance-flip-rate", AUDIT, Severity.ERROR, "The model's answer changes under "
         "meaning-preserving perturbations more often than audits.invariance.max_flip_rate "
         "allows.", noun=Noun("answer flip rate over the limit", "answer flip rates over the limit"),
         new_when="rate"),
    Rule("answer-flip", AUDIT, Severity.NOTICE, "The model answers a perturbed prompt "
         "differently from the original.",
         noun=Noun("answer that flips under a harmless rewrite",
                   "answers that flip under a harmless rewrite")),
    Rule("missing-prediction", AUDIT, Severity.WARNING,
         "Prompts (originals or variants) with no prediction.",
         noun=Noun("missing prediction", "missing predictions"), new_when="count"),
    Rule("unknown-prediction", AUDIT, Severity.WARNING,
         "Predictions whose id names no current prompt.",
         noun=Noun("prediction for an unknown prompt", "predictions for unknown prompts"),
         new_when="count"),
    Rule("stale-prediction", AUDIT, Severity.WARNING,
         "Predictions made for an older text of the prompt.",
         noun=Noun("stale prediction", "stale predictions"), new_when="count"),
)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _share(k: int, n: int) -> str:
    return f"{_pct(k / n)} ({k} of {n})" if n else "—"


def audit(inputs: Inputs, cfg: InvarianceConfig) -> AuditResult:
    """The model's answers to the eval prompts and their perturbations, compared."""
    if not (cfg.predictions or cfg.command) or inputs.predicted is None:
        return AuditResult(AUDIT, "Invariance", skipped="no predictions file or command "
                           "configured (audits.invariance)")
    if isinstance(inputs.predicted, str):
        return AuditResult(AUDIT, "Invariance", skipped=inputs.predicted)
    predicted = inputs.predicted
    return check(predicted.variants, predicted.predictions, cfg, source=predicted.source)


def check(variants: Sequence[Variant], predictions: Mapping[str, Prediction],
          cfg: InvarianceConfig, *, source: str = "predictions") -> AuditResult:
    """``variants`` holds every original (kind ``original``) and its perturbations."""
    labels: dict[str, list[str | None]] = defaultdict(list)
    for v in variants:
        if v.kind == ORIGINAL:
            labels[v.row.dataset].append(v.row.label)
    matchers = {name: make_matcher(cfg.matcher, values) for name, values in labels.items()}

    findings: list[Finding] = []
    answer, missing, stale, unknown = _answers(variants, predictions)

    originals = {v.row.row_id: v for v in variants if v.kind == ORIGINAL}
    kinds = [ORIGINAL] + [k for k in KINDS if any(v.kind == k for v in variants)]
    correct: dict[str, list[int]] = {k: [0, 0] for k in kinds}   # [right, answered]
    flips: dict[str, list[int]] = {k: [0, 0] for k in kinds[1:]}  # [flipped, compared]
    for v in variants:
        if v.id not in answer:
            continue
        m = matchers[v.row.dataset]
        if v.label is not None:
            correct[v.kind][1] += 1
            correct[v.kind][0] += m.same(answer[v.id], v.label)
        if v.kind == ORIGINAL:
            continue
        base = originals.get(v.row.row_id)
        if base is None or base.id not in answer:
            continue
        flips[v.kind][1] += 1
        if not _same_answer(m, base, answer[base.id], v, answer[v.id]):
            flips[v.kind][0] += 1
            findings.append(_flip(m, base, answer[base.id], v, answer[v.id]))

    findings += _data_findings(missing, unknown, stale, len(variants), source)
    flipped = sum(f[0] for f in flips.values())
    compared = sum(f[1] for f in flips.values())
    stats = [Stat("rows", len(originals)),
             Stat("variants", sum(1 for v in variants if v.kind != ORIGINAL)),
             Stat("matcher", ", ".join(sorted({f"{m.kind} ({name})"
                                               for name, m in matchers.items()})))]
    stats += [Stat(f"accuracy: {kind}", _share(*correct[kind])) for kind in kinds]
    stats += [Stat(f"flips: {kind}", _share(*flips[kind])) for kind in kinds[1:]]
    stats += [Stat(f"predictions {what}", count)
              for what, count in (("missing", len(missing)), ("unknown", len(unknown)),
                                  ("stale", len(stale))) if count]
    gate_stats, verdict, gate_findings = _gate(flipped, compared, cfg.max_flip_rate)
    return AuditResult(AUDIT, "Invariance", findings + gate_findings, stats + gate_stats,
                       verdict)


def _answers(variants: Sequence[Variant], predictions: Mapping[str, Prediction]
             ) -> tuple[dict[str, str | None], list[Variant], list[tuple[Variant, Prediction]],
                        list[Prediction]]:
    """Each variant's predicted answer, by variant id; the variants with no prediction, those
    whose prediction was made for another text (stale), and the predictions of no variant."""
    ids = {v.id for v in variants}
    answer: dict[str, str | None] = {}
    missing: list[Variant] = []
    stale: list[tuple[Variant, Prediction]] = []
    for v in variants:
        p = predictions.get(v.id)
        if p is None:
            missing.append(v)
        elif p.sha is not None and p.sha != v.sha:
            stale.append((v, p))
        else:
            answer[v.id] = p.prediction
    unknown = sorted((p for pid, p in predictions.items() if pid not in ids),
                     key=lambda p: p.line)
    return answer, missing, stale, unknown


def _gate(flipped: int, compared: int, limit: float) -> tuple[list[Stat], str, list[Finding]]:
    """The flip rate against ``max_flip_rate``: its figures, the verdict, the finding if any."""
    stats: list[Stat] = []
    findings: list[Finding] = []
    if not compared:
        verdict = "No variant could be compared with its original: no predictions for them."
        return stats, verdict, findings
    gate = rate_gate(flipped, compared, limit)
    rate, low, high = gate.rate, gate.low, gate.high
    stats += [Stat("flip rate", _share(flipped, compared)),
              Stat("95% Wilson interval", f"{_pct(low)} – {_pct(high)}"),
              Stat("max_flip_rate", _pct(limit))]
    summary = (f"{_pct(rate)} of {compared} meaning-preserving variants change the model's "
               f"answer (95% CI {_pct(low)}–{_pct(high)})")
    if gate.exceeded:
        verdict = f"Fail: {summary}, above the {_pct(limit)} limit."
        findings.append(Finding(AUDIT, "invariance-flip-rate", Severity.ERROR,
                                f"flip rate {_pct(rate)} ({flipped} of {compared} variants) "
                                f"exceeds max_flip_rate {_pct(limit)}", count=flipped,
                                score=round(rate, 4)))
    else:
        verdict = f"Pass: {summary}, within the {_pct(limit)} limit."
    return stats, verdict, findings


def _same_answer(m: Matcher, base: Variant, base_answer: str | None, v: Variant,
                 answer: str | None) -> bool:
    if base_answer is None or answer is None:
        return base_answer is None and answer is None
    if v.letters:
        letter = choice_letter(answer)
        if letter is not None:
            answer = v.original_letter(letter)
    return m.same(answer, base_answer)


def _flip(m: Matcher, base: Variant, base_answer: str | None, v: Variant,
          answer: str | None) -> Finding:
    def verdict(text: str | None, label: str | None) -> str:
        if label is None:
            return ""
        return " (right)" if m.same(text, label) else " (wrong)"
    message = (f"answer changed under {v.kind}: '{m.show(base_answer)}'"
               f"{verdict(base_answer, base.label)} on the original, '{m.show(answer)}'"
               f"{verdict(answer, v.label)} on the variant {v.id} "
               f"({describe_change(base.prompt, v.prompt, v.kind)})")
    row = v.row
    return Finding.for_row(AUDIT, "answer-flip", Severity.NOTICE, message, row,
                           match=Match(row.dataset, row.path, row.line, v.id, v.prompt))


def describe_change(original: str, variant: str, kind: str, width: int = 12) -> str:
    """What the variant changed, short enough for a table cell."""
    if kind == "noise":
        return "spacing and case only"
    if kind == "options":
        return "options reordered"
    a, b = original.split(), variant.split()
    ops = [op for op in SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes()
           if op[0] != "equal"]
    if not ops:
        return "spacing only"
    if kind == "preamble" and ops[0][0] == "insert" and ops[0][1] == 0:
        return "added: " + " ".join(b[ops[0][3]:ops[0][4]])
    if kind == "synonym":
        wa, wb = re.findall(r"[\w'’]+", original), re.findall(r"[\w'’]+", variant)
        changed = [op for op in SequenceMatcher(a=wa, b=wb, autojunk=False).get_opcodes()
                   if op[0] != "equal"]
        if changed and all(op[0] == "replace" for op in changed):
            return ", ".join(f"{' '.join(wa[i1:i2])} → {' '.join(wb[j1:j2])}"
                             for _, i1, i2, j1, j2 in changed)
    start = max(0, ops[0][3] - 3)
    excerpt = " ".join(b[start:start + width])
    return f"now: {'…' if start else ''}{excerpt}{'…' if start + width < len(b) else ''}"


def _data_findings(missing: list[Variant], unknown: list[Prediction],
                   stale: list[tuple[Variant, Prediction]], total: int, source: str
                   ) -> list[Finding]:
    out = []
    if missing:
        out.append(missing_prediction(missing, total, source))
    if unknown:
        first = unknown[0]
        out.append(Finding(AUDIT, "unknown-prediction", Severity.WARNING,
                           f"{len(unknown)} prediction{'' if len(unknown) == 1 else 's'} name no "
                           f"current prompt (first: '{first.id}'): the dataset or the "
                           "perturbation settings changed since they were made",
                           path=first.path, line=first.line, count=len(unknown)))
    if stale:
        v, p = stale[0]
        out.append(Finding(AUDIT, "stale-prediction", Severity.WARNING,
                           f"{len(stale)} prediction{'' if len(stale) == 1 else 's'} were made "
                           f"for an older prompt text (first: '{v.id}', sha {p.sha}, now "
                           f"{v.sha}); not compared", path=p.path, line=p.line,
                           count=len(stale)))
    return out


def missing_prediction(missing: Sequence[Variant], total: int, source: str,
                       which: str = "") -> Finding:
    """One finding for prompts with no prediction, at the first one's row. ``which`` says
    which prompts these are (e.g. " for rows this change added or edited")."""
    first = missing[0]
    return Finding(AUDIT, "missing-prediction", Severity.WARNING,
                   f"{len(missing)} of {total} prompts have no prediction in {source}{which} "
                   f"(first: '{first.id}'); regenerate the predictions with "
                   "eval-firewall perturb", dataset=first.row.dataset,
                   path=first.row.path, line=first.row.line, row_id=first.row.row_id,
                   count=len(missing))


def split_missing(findings: Sequence[Finding], head: Inputs, base: Inputs) -> list[Finding]:
    """Under ``--base`` (this audit's ``refine_new``): split ``missing-prediction`` in two,
    prompts already without a prediction at the base (existing) and the others (rows the change
    added or edited, or predictions it removed: new), so the new finding points at the change's
    own row."""
    old = [f for f in findings if f.rule == "missing-prediction"]
    if not old or not isinstance(head.predicted, Predicted) \
            or not isinstance(base.predicted, Predicted):
        return list(findings)
    variants, source = head.predicted.variants, head.predicted.source
    missing_at_base = {(v.id, v.sha) for v in _missing(base.predicted.variants,
                                                         base.predicted.predictions)}
    missing = _missing(variants, head.predicted.predictions)
    before = [v for v in missing if (v.id, v.sha) in missing_at_base]
    now = [v for v in missing if (v.id, v.sha) not in missing_at_base]
    split = []
    for group, which, new in ((before, " (missing at the base too)", False),
                              (now, " for rows this change added or edited", True)):
        if group:
            f = missing_prediction(group, len(variants), source, which)
            split.append(replace(f, severity=old[0].severity, new=new))
    return [f for f in findings if f.rule != "missing-prediction"] + split


def _missing(variants: Sequence[Variant], predictions: Mapping[str, Prediction]) -> list[Variant]:
    return [v for v in variants if v.id not in predictions]
