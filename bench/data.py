"""Realistic benchmark data derived from GSM8K questions.

Train rows are variants of GSM8K train questions (other numbers, other names, a few word
swaps: what a templated generator produces); eval rows are variants of GSM8K test questions
and of held-out train questions, plus planted leaks of train rows: 1% exact copies, 1%
near-duplicates (a word added), 1% reordered copies (question moved first, words swapped:
lexically close), and the 60 hand-written paraphrases of tests/data/paraphrase_pairs.jsonl
(originals spread through train, paraphrases in eval: the semantic stage's real work).
The same seed gives the same files.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

GSM8K = Path(__file__).resolve().parents[1] / "tests" / "data" / "gsm8k"
PAIRS = Path(__file__).resolve().parents[1] / "tests" / "data" / "paraphrase_pairs.jsonl"
NAMES = ("James John Mary Lisa Tom Anna Carlos Aisha Wei Priya Omar Sofia Liam Emma Noah Mia "
         "Lucas Zoe Mateo Chloe Ethan Hana Ivan Nina Kofi Sara Diego Lena Ravi Maya").split()
SWAPS = [("buys", "purchases"), ("bought", "purchased"), ("each", "apiece"), ("total", "sum"),
         ("How many", "What number of"), ("How much", "What amount"), ("has", "owns"),
         ("store", "shop"), ("every", "each"), ("gets", "receives"), ("makes", "earns")]
_NUMBER = re.compile(r"\b\d+\b")
_NAME = re.compile(r"\b(" + "|".join(NAMES) + r")\b")
_SENTENCE = re.compile(r"(?<=[.?!])\s+")


def questions(split: str) -> list[str]:
    with open(GSM8K / f"{split}.jsonl", encoding="utf-8") as fh:
        return [json.loads(line)["question"] for line in fh]


def vary(text: str, rng: random.Random) -> str:
    """Another instance of the same template: new numbers, maybe another name and wording."""
    text = _NUMBER.sub(lambda m: str(max(2, round(int(m.group()) * rng.uniform(0.5, 2.5)))), text)
    if rng.random() < 0.5:
        text = _NAME.sub(rng.choice(NAMES), text)
    for old, new in rng.sample(SWAPS, 2):
        if old in text:
            text = text.replace(old, new, 1)
    return text


def near_copy(text: str, rng: random.Random) -> str:
    words = text.split()
    i = rng.randrange(len(words))
    if not any(c.isdigit() for c in words[i]):
        words[i] = rng.choice(["really", "then", "also", "just"]) + " " + words[i]
    return " ".join(words)


def paraphrase(text: str) -> str:
    sentences = _SENTENCE.split(text.strip())
    if len(sentences) > 1:   # ask the question first: "How many ...? <facts>"
        sentences = [sentences[-1], *sentences[:-1]]
    out = " ".join(sentences)
    for old, new in SWAPS:
        out = out.replace(old, new, 1)
    return out


def generate(eval_rows: int, train_rows: int, directory: Path, seed: int = 0) -> Path:
    """Write ``data/train/train.jsonl`` and ``data/eval/eval.jsonl`` under ``directory``."""
    rng = random.Random(seed)
    train_q, test_q = questions("train"), questions("test")
    held_out, train_bases = train_q[:2000], train_q[2000:]
    (directory / "data" / "train").mkdir(parents=True, exist_ok=True)
    (directory / "data" / "eval").mkdir(parents=True, exist_ok=True)
    pairs = [json.loads(line) for line in PAIRS.read_text(encoding="utf-8").splitlines()]
    pairs = [p for p in pairs if p["label"] == 1]
    step = max(1, train_rows // (len(pairs) + 1))
    originals = {step * (k + 1): p["a"] for k, p in enumerate(pairs) if step * (k + 1) < train_rows}
    train: list[str] = []
    with open(directory / "data/train/train.jsonl", "w", encoding="utf-8") as fh:
        for i in range(train_rows):
            base = train_bases[i % len(train_bases)]
            text = base if i < len(train_bases) else vary(base, rng)
            text = originals.get(i, text)
            train.append(text)
            fh.write(json.dumps({"id": f"t{i}", "question": text, "answer": str(i % 97)}) + "\n")
    leaks = max(1, eval_rows // 100)
    eval_bases = test_q + held_out
    with open(directory / "data/eval/eval.jsonl", "w", encoding="utf-8") as fh:
        for i in range(eval_rows):
            if i < leaks:
                text = train[rng.randrange(len(train))]
            elif i < 2 * leaks:
                text = near_copy(train[rng.randrange(len(train))], rng)
            elif i < 3 * leaks:
                text = paraphrase(train[rng.randrange(len(train))])
            elif i < 3 * leaks + len(originals):
                text = pairs[i - 3 * leaks]["b"]
            else:
                base = eval_bases[i % len(eval_bases)]
                text = base if i < len(eval_bases) else vary(base, rng)
            fh.write(json.dumps({"id": f"e{i}", "question": text, "answer": str(i % 89)}) + "\n")
    return directory


def change_eval_rows(directory: Path, count: int, seed: int = 1) -> None:
    """Replace ``count`` eval rows with new ones (fresh variants), as a pull request would."""
    rng = random.Random(seed)
    path = directory / "data/eval/eval.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    test_q = questions("test")
    for k, i in enumerate(rng.sample(range(len(lines)), count)):
        row = json.loads(lines[i])
        row["question"] = vary(test_q[(k * 7) % len(test_q)], rng)
        lines[i] = json.dumps(row)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def planted_paraphrase_ids(eval_rows: int, train_rows: int) -> list[str]:
    """The eval row ids :func:`generate` gives the hand-written paraphrases (their originals
    are in train)."""
    pairs = [json.loads(line) for line in PAIRS.read_text(encoding="utf-8").splitlines()]
    count = sum(1 for p in pairs if p["label"] == 1)
    step = max(1, train_rows // (count + 1))
    planted = sum(1 for k in range(count) if step * (k + 1) < train_rows)
    leaks = max(1, eval_rows // 100)
    return [f"e{i}" for i in range(3 * leaks, 3 * leaks + min(planted, eval_rows - 3 * leaks))]


def add_train_file(directory: Path, rows: int, seed: int = 2) -> Path:
    """Write ``data/train/extra.jsonl``: ``rows`` more train rows (varied train questions)."""
    rng = random.Random(seed)
    bases = questions("train")
    path = directory / "data/train/extra.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(rows):
            text = vary(bases[rng.randrange(len(bases))], rng)
            fh.write(json.dumps({"id": f"x{i}", "question": text, "answer": "0"}) + "\n")
    return path
