"""Rebuild this example from the real GSM8K files (../../../shared/data/gsm8k/).

Run from this folder: `python make_example.py`. The output is committed, so users never need
to run it; it documents exactly what was planted. GSM8K is MIT-licensed (see LICENSE-GSM8K).

The eval split is 300 real GSM8K test questions with human provenance, plus planted problems:
exact copies and near-duplicates of train questions, hand-written paraphrases of train
questions, model-written labels, unverified labels, and eval rows made by the same generator
as the synthetic training augmentations. The synthetic training rows are simulated: real train
questions with names and numbers swapped by this script, labelled as if a model generated them.
"""

from __future__ import annotations

import csv
import json
import random
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parents[2] / "shared/data/gsm8k"
GENERATOR = "gpt-4o-mini-2024-07-18"
ANNOTATORS = ["annotator-ana", "annotator-ben", "annotator-chen"]
NAMES = ["Maria", "Tomas", "Aisha", "Kenji", "Olga", "Pedro", "Lena", "Samir"]

# Hand-written paraphrases of train questions (index into the train file, rewording).
PARAPHRASES = {
    0: "In April Natalia sold clips to 48 friends. In May she sold half that many. "
       "Across both months, how many clips did she sell in total?",
    1: "Weng gets paid $12 per hour to babysit. She babysat for 50 minutes yesterday. "
       "What did she earn?",
    3: "A book has 120 pages. Julie got through 12 of them yesterday and double that amount "
       "today. Tomorrow she plans to finish half of what is still unread. How many pages is "
       "that?",
}


def load(name: str) -> list[dict]:
    with open(SHARED / f"{name}.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def meta(label_source="human", verified_by=None, generator=None) -> dict:
    return {"label_source": label_source, "verified_by": verified_by, "generator": generator}


def swap_numbers(text: str, rng: random.Random) -> str:
    return re.sub(r"\b\d+\b", lambda m: str(int(m.group()) + rng.randint(1, 9)), text)


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def main() -> None:
    rng = random.Random(8)
    train_src, test_src = load("train"), load("test")

    train = [{"id": f"train-{i:05d}", "question": r["question"], "answer": r["answer"],
              "meta": meta()} for i, r in enumerate(train_src[:2000])]
    write_jsonl(HERE / "data/train/gsm8k-train.jsonl", train)

    synthetic = []
    for i, r in enumerate(train_src[2000:2150]):
        name = NAMES[i % len(NAMES)]
        question = re.sub(r"^[A-Z][a-z]+", name, swap_numbers(r["question"], rng))
        synthetic.append({"id": f"synth-{i:05d}", "question": question,
                          "answer": "(model-written solution)",
                          "meta": meta("model", None, GENERATOR)})
    write_jsonl(HERE / "data/train/synthetic-augment.jsonl", synthetic)

    evals = []
    for i, r in enumerate(test_src[:300]):
        evals.append({"id": f"eval-{i:05d}", "question": r["question"], "answer": r["answer"],
                      "meta": meta("human", ANNOTATORS[i % 3])})

    def plant(question, answer, m, note):
        evals.append({"id": f"eval-{len(evals):05d}", "question": question, "answer": answer,
                      "meta": m, "note": note})

    # Exact copies of train questions (case and punctuation changed: still the same text).
    plant(train[10]["question"], train[10]["answer"], meta("human", "annotator-ana"),
          "exact copy of train-00010")
    plant(train[25]["question"].upper(), train[25]["answer"], meta("human", "annotator-ben"),
          "exact copy of train-00025 in capitals")
    plant(train[40]["question"].replace(",", "").replace("?", " ?"), train[40]["answer"],
          meta("human", "annotator-chen"), "exact copy of train-00040, punctuation changed")
    # Near-duplicates: numbers changed, a word substituted, a preamble added.
    plant(swap_numbers(train[55]["question"], rng), "#### (recomputed)",
          meta("human", "annotator-ana"), "train-00055 with numbers changed")
    plant(train[70]["question"].replace(" bought ", " purchased ").replace(" has ", " owns "),
          train[70]["answer"], meta("human", "annotator-ben"),
          "train-00070 with words substituted")
    plant("Here is a question. " + train[85]["question"], train[85]["answer"],
          meta("human", "annotator-chen"), "train-00085 with a preamble")
    # Paraphrases: same problem, reworded by hand.
    for j, text in PARAPHRASES.items():
        plant(text, train[j]["answer"], meta("human", "annotator-ana"),
              f"hand-written paraphrase of train-{j:05d}")
    # Labels written by a model, and labels nobody verified.
    for k in (301, 302, 303):
        r = test_src[k]
        plant(r["question"], r["answer"], meta("gpt-4o", None), "label written by a model")
    for k in (304, 305):
        r = test_src[k]
        plant(r["question"], r["answer"], meta("human", None), "label not verified")
    # Eval rows produced by the generator that also made the training augmentations.
    for k in (2160, 2170):
        r = train_src[k]
        plant(re.sub(r"^[A-Z][a-z]+", "Priya", swap_numbers(r["question"], rng)), "#### 0",
              meta("human", "annotator-ben", GENERATOR), "made by the training generator")
    # A duplicate inside the eval set.
    plant(test_src[5]["question"], test_src[5]["answer"], meta("human", "annotator-chen"),
          "repeats eval-00005")
    write_jsonl(HERE / "data/eval/gsm8k-test.jsonl", evals)

    # A second eval set, CSV, whose dataset card declares machine-generated annotations.
    hard = HERE / "data/eval-hard"
    hard.mkdir(parents=True, exist_ok=True)
    with open(hard / "gsm8k-hard.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "question", "answer", "label_source", "verified_by"])
        for i, r in enumerate(test_src[400:420]):
            writer.writerow([f"hard-{i:03d}", r["question"], r["answer"].split("####")[-1].strip(),
                             "human", ANNOTATORS[i % 3]])


if __name__ == "__main__":
    main()
