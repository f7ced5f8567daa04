"""A stand-in "model" for the example's invariance audit: deterministic, documented, and brittle
in the way a model that memorized its eval set is.

It has memorized the answer to every question of data/eval/gsm8k-test.jsonl, keyed by the
question sentence (the last sentence, lower-cased, punctuation and spacing ignored). Given a
prompt, it answers from memory when it recognizes the prompt's last sentence; otherwise it
guesses the last number in the prompt. So it shrugs off added preambles, whitespace and casing
noise and swaps of earlier sentences, but its answer flips when the question sentence itself
is reworded (a synonym in it, an "If ..." clause moved). Standard library only.

Usage (from this folder): python stand_in_model.py PROMPTS.jsonl PREDICTIONS.jsonl
(or with the EVAL_FIREWALL_PROMPTS / EVAL_FIREWALL_PREDICTIONS environment variables, as
eval-firewall's prediction command passes them). Each output line is
{"id", "prediction", "sha"}; "sha" echoes the prompt's, so stale predictions are caught.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def question_key(text: str) -> str:
    last = re.split(r"(?<=[.?!])\s+", text.strip())[-1]
    return " ".join(re.findall(r"[a-z0-9]+", last.lower()))


def memory() -> dict[str, str]:
    known: dict[str, str] = {}
    with open(HERE / "data/eval/gsm8k-test.jsonl", encoding="utf-8") as fh:
        for row in map(json.loads, fh):
            answer = row["answer"].split("####")[-1].strip()
            known.setdefault(question_key(row["question"]), answer)
    return known


def answer(prompt: str, known: dict[str, str]) -> str:
    remembered = known.get(question_key(prompt))
    if remembered is not None:
        return remembered
    numbers = re.findall(r"\d[\d,]*(?:\.\d+)?", prompt)
    return numbers[-1] if numbers else "0"


def main(prompts: str, predictions: str) -> None:
    known = memory()
    with open(prompts, encoding="utf-8") as src, open(predictions, "w", encoding="utf-8") as out:
        for line in src:
            if line.strip():
                p = json.loads(line)
                out.write(json.dumps({"id": p["id"], "prediction": answer(p["prompt"], known),
                                      "sha": p["sha"]}) + "\n")


if __name__ == "__main__":
    args = sys.argv[1:] or [os.environ["EVAL_FIREWALL_PROMPTS"],
                            os.environ["EVAL_FIREWALL_PREDICTIONS"]]
    main(*args)
