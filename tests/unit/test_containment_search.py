"""Containment: eval items quoted inside longer train rows, their spans and leak kinds."""

from __future__ import annotations

import json
import textwrap

import numpy as np

from conftest import gsm8k
from eval_firewall.audits import overlap
from eval_firewall.audits.leak import INPUT, INPUT_LABEL, leak_kind
from eval_firewall.config import OverlapConfig
from eval_firewall.findings import Report
from eval_firewall.inputs import Inputs
from eval_firewall.overlap.corpus import Corpus
from eval_firewall.overlap.finders import MemoryFinder, search_overlaps
from eval_firewall.report.json import load_report, render_json
from eval_firewall.rows import Row
from eval_firewall.search import containment
from eval_firewall.search.containment import Settings, build, scan, search
from eval_firewall.search.windows import starts, window_length, windows_of
from eval_firewall.text.normalize import normalize
from eval_firewall.text.spans import char_span

TEST = gsm8k("test", 60)
TRAIN = gsm8k("train", 300)


def row(text: str, i: int = 0, role: str = "eval", label: str | None = None) -> Row:
    path = f"data/{role}.jsonl"
    return Row(role, role, path, i + 1, f"{role}-{i}", text, label=label)


def cfg(**containment_keys) -> OverlapConfig:
    return OverlapConfig(semantic={"enabled": False}, containment=containment_keys,
                         distribution={"enabled": False})


def document(quoted: str, i: int, answer: str | None = None) -> str:
    """A train document quoting ``quoted`` between other GSM8K problems, re-wrapped."""
    others = [r["question"] for r in TRAIN[5 * i:5 * i + 4]]
    item = textwrap.fill(quoted, 30)          # re-wrapped
    parts = others[:2] + [f"Problem 3. {item.upper()}"] + ([f"Solution: {answer}"] if answer
                                                           else []) + others[2:]
    return "\n\n".join(parts)


def run(evals: list[Row], train: list[Row], config: OverlapConfig | None = None):
    config = config or cfg()
    searched = search_overlaps(Corpus.of(evals), Corpus.of(train), config, MemoryFinder(),
                               text_fields={"train": ["text"]})
    return overlap.audit(Inputs([], overlap=searched), config)


def test_items_quoted_in_long_documents_are_found_with_span_and_leak_kind():
    evals = [row(r["question"], i, label=r["answer"]) for i, r in enumerate(TEST[:20])]
    train = [row(r["question"], i, "train") for i, r in enumerate(TRAIN[100:300])]
    for k in range(10):      # items 0-9 quoted, the even ones with their worked solution
        answer = TEST[k]["answer"] if k % 2 == 0 else None
        train.append(row(document(TEST[k]["question"], k, answer), len(train), "train"))
    result = run(evals, train)
    found = {f.line: f for f in result.findings if f.rule == "contained"}
    assert sorted(found) == list(range(1, 11))          # the 10 quoted, none of the others
    for k in range(10):
        f = found[k + 1]
        doc = train[200 + k]
        assert f.match.line == doc.line
        quoted = doc.text[f.match.span.start:f.match.span.end]
        assert normalize(quoted) == normalize(TEST[k]["question"])
        assert f.match.span.field == "text" and f.match.span.coverage == 1.0
        assert f.leak == (INPUT_LABEL if k % 2 == 0 else INPUT)
        assert ("input+label" in f.message) == (k % 2 == 0)


def test_clean_gsm8k_test_questions_are_not_contained_in_train():
    evals = [row(r["question"], i) for i, r in enumerate(TEST)]
    train = [row(r["question"], i, "train") for i, r in enumerate(TRAIN)]
    assert [f for f in run(evals, train).findings if f.rule == "contained"] == []


def test_short_items_count_only_whole_and_tiny_ones_not_at_all():
    short = "Which planet of the solar system is the largest one by mass?"    # 12 words
    tiny = "What is two plus two?"
    pad = " ".join(r["question"] for r in TRAIN[:3])      # long rows: no near-duplicates
    train = [row(f"Quiz night. {short} Jupiter, by far. {pad}", 0, "train"),
             row(f"{pad} Which planet of the solar system is the smallest one by mass?", 1,
                 "train"),
             row(f"Kids ask: {tiny} Four. {pad}", 2, "train")]
    evals = [row(short, 0), row(short.replace("largest", "hottest"), 1), row(tiny, 2)]
    found = [(f.line, f.rule) for f in run(evals, train).findings if f.match.dataset == "train"]
    assert found == [(1, "contained")]


def test_text_shared_by_many_train_rows_is_not_evidence():
    boiler = "Answer the following question with a single number and show your work step by step"
    question = TEST[0]["question"]
    train = [row(f"{boiler}. {TRAIN[i]['question']}", i, "train") for i in range(30)]
    evals = [row(f"{boiler}. {question}", 0)]
    assert run(evals, train, cfg(min_coverage=0.2)).findings == ()      # only boilerplate shared
    pad = " ".join(r["question"] for r in TRAIN[40:43])
    train.append(row(f"Worked examples:\n{boiler}. {question}\n{pad}", 30, "train"))
    findings = run(evals, train, cfg(min_coverage=0.2)).findings
    assert [f.match.line for f in findings] == [31]
    # the boilerplate's own n-grams (in 31 rows > max_train_rows) do not count towards coverage:
    # its words are covered only by the n-grams reaching into the question
    words = len(normalize(f"{boiler}. {question}").split())
    own = len(normalize(question).split())
    assert (own + 12) / words - 1e-4 <= findings[0].match.span.coverage < 1.0
    assert run(evals, train, cfg(min_coverage=0.2, max_train_rows=100)).findings[0] \
        .match.span.coverage == 1.0


def test_partial_quotes_count_by_coverage():
    question = TEST[3]["question"]
    words = question.split()
    half = " ".join(words[:len(words) * 2 // 3])
    train = [row(f"Intro text. {half} (continued elsewhere)", 0, "train")]
    assert run([row(question)], train, cfg(min_coverage=0.5)).findings[0].rule == "contained"
    assert run([row(question)], train, cfg(min_coverage=0.9)).findings == ()


def test_unicode_tricks_and_rewrapping_still_match():
    question = TEST[5]["question"]
    tricked = question.replace("a", "\uff41").replace(" ", "\n ", 5)     # fullwidth a, wraps
    train = [row(f"Header\n{tricked}\nFooter", 0, "train")]
    f = run([row(question)], train).findings[0]
    assert f.rule in ("contained", "near-duplicate")
    if f.rule == "contained":
        assert normalize(train[0].text[f.match.span.start:f.match.span.end]) == normalize(question)


def test_build_and_scan_over_chunks_equal_one_search():
    evals = [r["question"] for r in TEST[:10]]
    train = [r["question"] for r in TRAIN[:50]] + [document(evals[k], k) for k in range(5)]
    norm_e, norm_t = [normalize(t) for t in evals], [normalize(t) for t in train]
    whole = search(norm_e, norm_t, Settings())
    items = containment.EvalItems(norm_e, Settings())
    hits = containment.Hits()
    for start in range(0, len(norm_t), 7):                      # chunks of 7 rows
        arrays = build(norm_t[start:start + 7])
        assert arrays["tokens"].dtype == np.uint64 and arrays["starts"].dtype == np.int64
        scan(arrays, items, hits, start)
    assert containment.contained(hits, items) == whole
    assert sorted(whole) == [0, 1, 2, 3, 4]


def test_char_span_maps_words_to_the_original_text():
    text = "  Ｔhe QUICK,\tbrown fox — jumps!"
    assert char_span(text, 1, 3) == (text.index("QUICK"), text.index("fox") - 1)
    assert text[slice(*char_span(text, 0, 5))] == "Ｔhe QUICK,\tbrown fox — jumps!"


def test_leak_kind_needs_the_label_near_the_item_and_outside_it():
    item = row("Which option names the largest planet? (A) Mars (B) Jupiter (C) Venus", label="B")
    doc = "Quiz. Which option names the largest planet? (A) Mars (B) Jupiter (C) Venus. Answer: B"
    words = normalize(doc).split()
    span = (1, len(normalize(item.text).split()) + 1)
    assert leak_kind(item, row(doc, role="train"), span, 200) == INPUT_LABEL
    no_answer = doc.replace(" Answer: B", "")
    assert leak_kind(item, row(no_answer, role="train"), span, 200) == INPUT   # B inside the item
    far = doc.replace("Answer: B", " ".join(["filler"] * 50) + " Answer: B")
    assert leak_kind(item, row(far, role="train"), span, 10) == INPUT
    assert leak_kind(item, row(no_answer, role="train", label="B"), span, 200) == INPUT_LABEL
    assert len(words) > span[1]


def test_windows_cover_long_rows_and_leave_short_ones_whole():
    evals = [normalize(r["question"]) for r in TEST]
    window = window_length(evals)
    assert window & (window - 1) == 0 and 16 <= window <= 64
    assert starts(100, 32) == [0, 16, 32, 48, 64, 68]
    long_doc = " ".join(r["question"] for r in TRAIN[:12])
    train = Corpus.of([row(TRAIN[20]["question"], 0, "train"), row(long_doc, 1, "train")])
    units = windows_of(train, window, 3.0, 10_000)
    assert units is not None and units.row[0] == 0 and units.words[0] is None
    assert units.unit_of == {0: 0} and units.windowed_rows == 1
    for u in range(1, len(units.row)):
        first, last = units.words[u]
        assert last - first == window
        assert units.corpus.norm[u] == " ".join(train.norm[1].split()[first:last])
        assert normalize(units.corpus.rows[u].text) == units.corpus.norm[u]
    assert windows_of(train, window, 3.0, 5) is None               # too many windows: whole
    # paragraphs (blank lines) are units of their own when short enough
    paragraphs = "\n\n".join(r["question"] for r in TRAIN[:6])
    units = windows_of(Corpus.of([row(paragraphs, 0, "train")]), window, 1.0, 10_000)
    texts = [normalize(r.text) for r in units.corpus.rows]
    for r in TRAIN[:6]:
        if len(normalize(r["question"]).split()) <= window:
            assert normalize(r["question"]) in texts


def test_json_report_carries_span_and_leak_and_loads_back(tmp_path):
    evals = [row(TEST[0]["question"], 0, label=TEST[0]["answer"])]
    train = [row(document(TEST[0]["question"], 0, TEST[0]["answer"]), 0, "train")]
    result = run(evals, train)
    report = Report(fail_on="error", audits=[result], datasets=[])
    data = json.loads(render_json(report))
    assert data["schema_version"] == 2
    f = data["findings"][0]
    assert f["rule"] == "contained" and f["leak"] == "input+label"
    assert set(f["match"]["span"]) == {"start", "end", "field", "coverage", "window"}
    loaded = load_report(render_json(report))
    assert loaded.findings[0].match.span == result.findings[0].match.span
    assert loaded.findings[0].leak == "input+label"


def test_repeated_words_on_both_sides_stay_bounded_and_are_not_evidence():
    """A hostile pair (the same words over and over, in many eval and train rows): each
    n-gram is retired once it is in more than max_train_rows train rows, so hits never pile
    up, and the repetition flags nothing."""
    evals = [" ".join(["a"] * 300)] * 20 + [" ".join("bcdefghijk")] * 20
    train = [" ".join(["a"] * 1000)] * 300 + [" ".join("xbcdefghijky")] * 1200
    items = containment.EvalItems(evals, Settings())
    hits = containment.Hits()
    for start in range(0, len(train), 100):
        scan(build(train[start:start + 100]), items, hits, start)
        assert sum(len(h) for h in hits.grams) <= items.grams.first[-1] * 11
    assert containment.contained(hits, items) == {}
    assert items.grams.dead.all() and items.anchors.dead.all()


def test_pieces_bound_rows_and_characters():
    texts = ["x" * 10] * 5 + ["y" * 100] + ["z"] * 3
    assert containment._pieces(texts, 3, 25) == [(0, 2), (2, 4), (4, 5), (5, 6), (6, 9)]
    assert containment._pieces([], 3, 25) == []
    norm_e = [normalize(TEST[0]["question"])]
    norm_t = [normalize(r["question"]) for r in TRAIN[:20]] + [normalize(document(TEST[0]["question"], 0))]
    assert search(norm_e, norm_t, Settings(), piece_chars=300) == search(norm_e, norm_t, Settings())
