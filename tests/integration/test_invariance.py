"""Invariance audit: accuracy per perturbation kind, flips, the gate, prediction files and the
prediction command (run only when allowed), and the bundled example end to end."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import ID_DATASETS, ROOT, gsm8k, write_jsonl
from eval_firewall.audits.invariance import check, describe_change
from eval_firewall.cli import main
from eval_firewall.config import InvarianceConfig, OverlapConfig, load_config
from eval_firewall.engine import run_audits
from eval_firewall.errors import UserError
from eval_firewall.findings import Report, Severity
from eval_firewall.inputs.perturb import perturb_rows
from eval_firewall.inputs.predictions import Prediction, read_predictions
from eval_firewall.report import render_markdown
from eval_firewall.rows import Row
from eval_firewall.text.matching import final_number

EXAMPLE = ROOT / "examples" / "gsm8k"


def gsm8k_rows(n: int) -> list[Row]:
    return [Row("eval", "eval", "data/eval.jsonl", i + 1, f"g{i:03d}", r["question"],
                r["answer"]) for i, r in enumerate(gsm8k("test", n))]


def pred(pid: str, value: str | None, sha: str | None = None, line: int = 1) -> Prediction:
    return Prediction(pid, value, sha, "predictions.jsonl", line)


def stats(result) -> dict:
    return {s.label: s.value for s in result.stats}


def answer_of(row: Row) -> str:
    return f"{final_number(row.label):g}"


def test_accuracy_per_kind_and_flips():
    rows = gsm8k_rows(40)
    variants = perturb_rows(rows, seed=0, kinds=["synonym", "preamble", "noise"])
    predictions = {}
    flipped = set()
    for v in variants:
        right = answer_of(v.row)
        if v.kind == "synonym" and int(v.row.row_id[1:]) % 4 == 0:
            predictions[v.id] = pred(v.id, "-1")                 # flips, and is wrong
            flipped.add(v.id)
        elif v.kind == "original" and v.row.row_id == "g001":
            predictions[v.id] = pred(v.id, "-7")                 # wrong on the original...
        elif v.row.row_id == "g001":
            predictions[v.id] = pred(v.id, f"The answer is {right}.")  # ...right on variants
            flipped.add(v.id)
        else:
            predictions[v.id] = pred(v.id, right if v.kind != "noise" else f"${right}")
    result = check(variants, predictions, InvarianceConfig(max_flip_rate=0.5))
    s = stats(result)
    n_syn = sum(v.kind == "synonym" for v in variants)
    syn_flips = sum(1 for i in flipped if i.endswith("~synonym"))
    assert s["accuracy: original"] == "97.5% (39 of 40)"
    wrong_syn = syn_flips - ("g001~synonym" in flipped)
    assert s["accuracy: synonym"] == \
        f"{100 * (n_syn - wrong_syn) / n_syn:.1f}% ({n_syn - wrong_syn} of {n_syn})"
    assert s["accuracy: preamble"] == "100.0% (40 of 40)"
    assert s["accuracy: noise"] == "100.0% (40 of 40)"           # "$18" is 18
    assert s["flips: synonym"] == f"{100 * syn_flips / n_syn:.1f}% ({syn_flips} of {n_syn})"
    assert s["flips: preamble"] == "2.5% (1 of 40)"
    flips = [f for f in result.findings if f.rule == "answer-flip"]
    assert sorted(f.match.row_id for f in flips) == sorted(flipped)
    f = next(f for f in flips if f.match.row_id == "g001~preamble")
    preamble = f.match.text[:-len(rows[1].text) - 1]
    assert f.message == (f"answer changed under preamble: '-7' (wrong) on the original, "
                         f"'{answer_of(rows[1])}' (right) on the variant g001~preamble "
                         f"(added: {preamble})")
    assert (f.path, f.line, f.row_id, f.severity) == ("data/eval.jsonl", 2, "g001",
                                                       Severity.NOTICE)
    assert f.text == rows[1].text and f.match.text.endswith(rows[1].text)
    assert not any(f.rule == "invariance-flip-rate" for f in result.findings)
    assert result.verdict.startswith("Pass: ")


@pytest.mark.parametrize("original, variant, kind, said", [
    ("Tom buys a big car, and a bag.", "Tom purchases a large car, and a sack.", "synonym",
     "buys → purchases, big → large, bag → sack"),
    ("Tom has 3. How many?", "Please read this. Tom has 3. How many?", "preamble",
     "added: Please read this."),
    ("The cat sat.", "the  cat sat. ", "noise", "spacing and case only"),
    ("Q?\nA) x\nB) y", "Q?\nA) y\nB) x", "options", "options reordered"),
    ("Ann has 3 pens. If she loses 1, how many pens does she have left now?",
     "Ann has 3 pens. How many pens does she have left now if she loses 1?", "reorder",
     "now: …has 3 pens. How many pens does she have left now if…"),
])
def test_flip_messages_say_what_changed(original, variant, kind, said):
    assert describe_change(original, variant, kind) == said


def test_gate_fails_above_max_flip_rate():
    rows = gsm8k_rows(10)
    variants = perturb_rows(rows, seed=0, kinds=["preamble"])
    predictions = {v.id: pred(v.id, "1" if v.kind == "preamble" and v.row.row_id < "g003"
                              else answer_of(v.row)) for v in variants}
    result = check(variants, predictions, InvarianceConfig(max_flip_rate=0.2))
    [gate] = [f for f in result.findings if f.rule == "invariance-flip-rate"]
    assert gate.severity is Severity.ERROR
    assert gate.message == "flip rate 30.0% (3 of 10 variants) exceeds max_flip_rate 20.0%"
    assert stats(result)["flip rate"] == "30.0% (3 of 10)"
    assert result.verdict.startswith("Fail: 30.0% of 10 meaning-preserving variants")


def test_reordered_options_compare_the_chosen_option_not_its_letter():
    text = "Which planet is the largest?\nA) Mars\nB) Jupiter\nC) Venus\nD) Earth"
    rows = [Row("mc", "eval", "mc.jsonl", 1, "m1", text, "B")]
    variants = perturb_rows(rows, seed=3, kinds=["options"])
    original, shuffled = variants
    assert shuffled.label != "B"
    consistent = {original.id: pred(original.id, "B"), shuffled.id: pred(shuffled.id,
                                                                         shuffled.label)}
    result = check(variants, consistent, InvarianceConfig())
    assert stats(result)["accuracy: options"] == "100.0% (1 of 1)"
    assert stats(result)["flips: options"] == "0.0% (0 of 1)"
    # Answering the same letter after the shuffle is a different option: a flip.
    same_letter = {original.id: pred(original.id, "B"), shuffled.id: pred(shuffled.id, "B")}
    result = check(variants, same_letter, InvarianceConfig())
    assert stats(result)["flips: options"] == "100.0% (1 of 1)"
    assert stats(result)["accuracy: options"] == "0.0% (0 of 1)"


def test_missing_unknown_and_stale_predictions():
    rows = gsm8k_rows(3)
    variants = perturb_rows(rows, seed=0, kinds=["preamble"])
    by_id = {v.id: v for v in variants}
    predictions = {
        "g000~original": pred("g000~original", "18", by_id["g000~original"].sha, 1),
        "g000~preamble": pred("g000~preamble", "18", "0123456789abcdef", 2),
        "g001~original": pred("g001~original", "3", None, 3),
        "g001~preamble": pred("g001~preamble", "3", None, 4),
        "g009~original": pred("g009~original", "3", None, 5),
    }
    result = check(variants, predictions, InvarianceConfig())
    found = {f.rule: f for f in result.findings}
    assert found["missing-prediction"].message == (
        "2 of 6 prompts have no prediction in predictions (first: 'g002~original'); "
        "regenerate the predictions with eval-firewall perturb")
    assert found["unknown-prediction"].message == (
        "1 prediction name no current prompt (first: 'g009~original'): the dataset or the "
        "perturbation settings changed since they were made")
    assert (found["unknown-prediction"].path, found["unknown-prediction"].line) == (
        "predictions.jsonl", 5)
    stale = found["stale-prediction"]
    assert stale.message == (f"1 prediction were made for an older prompt text (first: "
                             f"'g000~preamble', sha 0123456789abcdef, now "
                             f"{by_id['g000~preamble'].sha}); not compared")
    assert (stale.path, stale.line, stale.severity) == ("predictions.jsonl", 2,
                                                        Severity.WARNING)
    s = stats(result)
    assert (s["predictions missing"], s["predictions unknown"], s["predictions stale"]) == (
        2, 1, 1)
    assert s["flips: preamble"] == "0.0% (0 of 1)"


def test_no_comparable_variant():
    variants = perturb_rows(gsm8k_rows(2), seed=0, kinds=["preamble"])
    result = check(variants, {}, InvarianceConfig())
    assert [f.rule for f in result.findings] == ["missing-prediction"]
    assert result.verdict == ("No variant could be compared with its original: no predictions "
                              "for them.")


@pytest.mark.parametrize("text, message", [
    ('{"id": "a", "prediction": "1"}\n{"id": "a", "prediction": "2"}\n',
     "p.jsonl:2: field 'id': duplicate prediction id 'a' (first at line 1)"),
    ('{"id": "a"}\n', "p.jsonl:1: field 'prediction': a prediction needs a 'prediction' key"),
    ('{"prediction": "1"}\n', "p.jsonl:1: field 'id': a prediction needs an 'id'"),
    ('{"id": "a", "prediction": 1\n', "p.jsonl:1: invalid JSON: Expecting ',' delimiter "
                                       "(column 28)"),
    ('"a"\n', "p.jsonl:1: expected a JSON object"),
])
def test_malformed_predictions(tmp_path: Path, text, message):
    (tmp_path / "p.jsonl").write_text(text, encoding="utf-8")
    with pytest.raises(UserError) as err:
        read_predictions(tmp_path / "p.jsonl", "p.jsonl")
    assert str(err.value) == message


def test_predictions_values_are_read_as_text(tmp_path: Path):
    (tmp_path / "p.jsonl").write_text('{"id": 7, "prediction": 18, "sha": "ab"}\n\n'
                                      '{"id": "b", "prediction": null}\n', encoding="utf-8")
    got = read_predictions(tmp_path / "p.jsonl", "p.jsonl")
    assert got["7"] == Prediction("7", "18", "ab", "p.jsonl", 1)
    assert got["b"].prediction is None and got["b"].line == 3


# --- the engine: predictions file or command --------------------------------------------------

CONFIG = ID_DATASETS + """\
audits:
  overlap: {enabled: false}
  provenance: {enabled: false}
  invariance:
INVARIANCE
"""

MODEL = """\
import json, os, re, sys
src, dst = (sys.argv[1:] or [os.environ["EVAL_FIREWALL_PROMPTS"],
                             os.environ["EVAL_FIREWALL_PREDICTIONS"]])
with open(src) as fh, open(dst, "w") as out:
    for line in fh:
        p = json.loads(line)
        guess = "42" if p["kind"] == "synonym" else re.findall(r"\\d+", p["prompt"])[0]
        out.write(json.dumps({"id": p["id"], "prediction": guess, "sha": p["sha"]}) + "\\n")
"""


def make_repo(tmp_path: Path, invariance: str) -> Path:
    rows = [{"id": f"g{i:03d}", **r} for i, r in enumerate(gsm8k("test", 25))]
    write_jsonl(tmp_path / "data/eval.jsonl", rows)
    write_jsonl(tmp_path / "data/train.jsonl", gsm8k("train", 3))
    (tmp_path / "model.py").write_text(MODEL, encoding="utf-8")
    (tmp_path / "fail.py").write_text('import sys\nprint("working")\n'
                                      'sys.stderr.write("starting\\nboom\\n")\nsys.exit(3)\n',
                                      encoding="utf-8")
    (tmp_path / "noop.py").write_text("pass\n", encoding="utf-8")
    (tmp_path / ".eval-firewall.yml").write_text(CONFIG.replace("INVARIANCE", invariance),
                                                 encoding="utf-8")
    return tmp_path


def invariance_of(report: Report):
    return next(a for a in report.audits if a.audit == "invariance")


def command(script: str = "model.py", args: str = "{prompts} {predictions}") -> str:
    return f"    command: {json.dumps(f'{sys.executable} {script} {args}')}"


def test_command_runs_only_when_allowed(tmp_path: Path):
    root = make_repo(tmp_path, command())
    config = load_config(root / ".eval-firewall.yml")
    skipped = invariance_of(run_audits(config))
    assert skipped.skipped.startswith("the prediction command runs only when allowed")
    assert not (root / "predictions.jsonl").exists()
    ran = invariance_of(run_audits(config, allow_commands=True))
    assert ran.skipped is None
    s = stats(ran)
    assert s["flips: synonym"].startswith("100.0%")
    assert "predictions missing" not in s and "predictions stale" not in s


def test_command_through_the_environment_and_the_cli_flag(tmp_path: Path):
    root = make_repo(tmp_path, command(args=""))  # paths from the environment
    cfg = str(root / ".eval-firewall.yml")
    without = CliRunner().invoke(main, ["audit", "-q", "--config", cfg, "--format", "json"])
    inv = next(a for a in json.loads(without.stdout)["audits"] if a["audit"] == "invariance")
    assert inv["skipped"].startswith("the prediction command runs only when allowed")
    with_flag = CliRunner().invoke(main, ["audit", "-q", "--config", cfg, "--format", "json",
                                          "--allow-command"])
    inv = next(a for a in json.loads(with_flag.stdout)["audits"] if a["audit"] == "invariance")
    assert inv["skipped"] is None and with_flag.exit_code == 1      # flips above 10%


def test_a_predictions_file_is_used_when_the_command_is_not_allowed(tmp_path: Path):
    root = make_repo(tmp_path, command() + "\n    predictions: preds.jsonl")
    prompts = root / "prompts.jsonl"
    result = CliRunner().invoke(main, ["perturb", "--dataset", "eval", "--output", str(prompts),
                                       "--config", str(root / ".eval-firewall.yml")])
    assert result.exit_code == 0
    import subprocess
    subprocess.run([sys.executable, "model.py", str(prompts), "preds.jsonl"], cwd=root,
                   check=True)
    report = run_audits(load_config(root / ".eval-firewall.yml"))
    inv = invariance_of(report)
    assert inv.skipped is None
    assert "predictions missing" not in stats(inv)
    assert stats(inv) == stats(invariance_of(run_audits(
        load_config(root / ".eval-firewall.yml"), allow_commands=True)))


@pytest.mark.parametrize("cmd, message", [
    ('    command: "definitely-not-a-command-xyz"',
     ".eval-firewall.yml: field 'audits.invariance.command': command not found: "
     "definitely-not-a-command-xyz"),
    (command("fail.py"),
     ".eval-firewall.yml: field 'audits.invariance.command': the prediction command exited "
     "with 3: boom"),
    (command("noop.py"),
     ".eval-firewall.yml: field 'audits.invariance.command': the prediction command wrote no "
     "predictions file (expected at {predictions} / $EVAL_FIREWALL_PREDICTIONS)"),
])
def test_command_failures_are_one_line_errors(tmp_path: Path, cmd, message):
    root = make_repo(tmp_path, cmd)
    result = CliRunner().invoke(main, ["audit", "-q", "--allow-command", "--config",
                                       str(root / ".eval-firewall.yml")])
    assert result.exit_code == 2
    assert result.stderr == f"eval-firewall: error: {message}\n"


def test_not_configured_is_reported_as_not_run(tmp_path: Path):
    root = make_repo(tmp_path, "    max_flip_rate: 0.1")
    inv = invariance_of(run_audits(load_config(root / ".eval-firewall.yml")))
    assert inv.skipped == "no predictions file or command configured (audits.invariance)"


def test_missing_predictions_file_is_an_error(tmp_path: Path):
    root = make_repo(tmp_path, "    predictions: nope.jsonl")
    with pytest.raises(UserError) as err:
        run_audits(load_config(root / ".eval-firewall.yml"))
    assert str(err.value) == (".eval-firewall.yml:16: field 'audits.invariance.predictions': "
                              "predictions file not found (nope.jsonl)")


# --- the bundled example ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def example_report():
    config = load_config(EXAMPLE / ".eval-firewall.yml")
    audits = config.audits.model_copy(update={"overlap": OverlapConfig(enabled=False)})
    return run_audits(config.model_copy(update={"audits": audits}))


def test_example_predictions_are_current(example_report):
    inv = invariance_of(example_report)
    s = stats(inv)
    assert not {"predictions missing", "predictions unknown", "predictions stale"} & set(s)
    assert s["accuracy: original"] == "100.0% (317 of 317)"
    assert s["flips: preamble"] == "0.0% (0 of 317)" and s["flips: noise"] == "0.0% (0 of 317)"
    assert any(f.rule == "invariance-flip-rate" for f in inv.findings)


def test_example_disagreement(example_report):
    dis = next(a for a in example_report.audits if a.audit == "disagreement")
    s = stats(dis)
    assert (s["annotated rows"], s["annotators"], s["skipped: empty"]) == (40, 2, 1)
    assert s["annotator ana: disagreement"] == "5.0% (2 of 40)"
    assert s["annotator ben: disagreement"] == "7.7% (3 of 39)"
    both = [f for f in dis.findings if f.rule == "label-disagreement" and f.count == 2]
    assert [f.row_id for f in both] == ["eval-00113"]


def test_example_report_sections(example_report):
    text = render_markdown(example_report)
    assert "#### Disagreement" in text and "#### Invariance" in text
    assert "| flips: reorder |" in text and "| annotator ben: disagreement |" in text
    assert "answer changed under reorder" in text


def test_example_command_reproduces_the_committed_predictions(tmp_path: Path):
    copy = tmp_path / "gsm8k"
    shutil.copytree(EXAMPLE, copy)
    config = load_config(copy / ".eval-firewall.yml")
    config = config.model_copy(update={"audits": config.audits.model_copy(update={
        "overlap": OverlapConfig(enabled=False),
        "invariance": config.audits.invariance.model_copy(update={
            "command": config.audits.invariance.command.replace("python3", sys.executable)})})})
    from_file = stats(invariance_of(run_audits(config)))
    from_command = stats(invariance_of(run_audits(config, allow_commands=True)))
    assert from_file == from_command


@pytest.mark.parametrize("extra, message", [
    ("    dataset: train", ".eval-firewall.yml: field 'audits.invariance.dataset': 'train' is a "
                         "train dataset, not an eval dataset"),
    ("", ".eval-firewall.yml: field 'audits.invariance.dataset': several eval datasets: name "
         "the one to audit"),
])
def test_the_audited_dataset_must_be_one_eval_dataset(tmp_path: Path, extra, message):
    root = make_repo(tmp_path, "    predictions: p.jsonl\n" + extra)
    config = (root / ".eval-firewall.yml").read_text(encoding="utf-8").replace(
        "audits:\n", "  - name: eval2\n    role: eval\n    paths: [data/eval.jsonl]\n"
                     "    text: question\naudits:\n")
    (root / ".eval-firewall.yml").write_text(config, encoding="utf-8")
    (root / "p.jsonl").write_text("", encoding="utf-8")
    with pytest.raises(UserError) as err:
        run_audits(load_config(root / ".eval-firewall.yml"))
    assert str(err.value) == message


def test_docs_quote_the_example_report(example_report):
    """The worked examples' figures in the docs are the example's current figures."""
    for audit_name in ("disagreement", "invariance"):
        text = (ROOT / "docs" / "audits" / f"{audit_name}.md").read_text(encoding="utf-8")
        section = text[:text.index("## Rules")]
        quoted = [line.strip("|").split("|") for line in section.splitlines()
                  if line.startswith("| ") and not line.startswith("| Figure")
                  and not line.startswith("| Kind") and not line.startswith("| `")]
        result = next(a for a in example_report.audits if a.audit == audit_name)
        figures = {s.label: str(s.value) for s in result.stats}
        assert quoted, audit_name
        for label, value in quoted:
            assert figures[label.strip()] == value.strip(), label
        assert result.verdict.split(": ", 1)[1].rstrip(".") in " ".join(section.split())


def test_base_builds_prompts_with_the_configured_preambles(tmp_path):
    """`--base` rebuilds the base's prompts the way the head does, preambles included: a
    harmless change to the train side leaves no invariance finding new, and none stale."""
    from conftest import git_commit, git_init

    repo = git_init(tmp_path)
    rows = gsm8k("test", 12)
    eval_rows = [{"id": f"g{i:03d}", "question": r["question"], "answer": r["answer"]}
                 for i, r in enumerate(rows)]
    write_jsonl(repo / "data/eval.jsonl", eval_rows)
    write_jsonl(repo / "data/train.jsonl", [{"question": r["question"]}
                                            for r in gsm8k("train", 20)])
    preambles = ["Read this carefully before you answer.", "A question from our quiz night."]
    as_rows = [Row("eval", "eval", "data/eval.jsonl", i + 1, r["id"], r["question"], r["answer"])
               for i, r in enumerate(eval_rows)]
    # A model that always answers right, but slips on one row's preamble variant (one existing
    # flip), with predictions echoing each prompt's sha.
    predictions = [{"id": v.id, "sha": v.sha,
                    "prediction": "-1" if v.id == "g003~preamble" else answer_of(v.row)}
                   for v in perturb_rows(as_rows, seed=0, preambles=preambles)]
    write_jsonl(repo / "predictions.jsonl", predictions)
    (repo / ".eval-firewall.yml").write_text(
        ID_DATASETS + "audits:\n  overlap: {semantic: {enabled: false}, "
        "distribution: {enabled: false}}\n  invariance:\n    predictions: predictions.jsonl\n"
        "    max_flip_rate: 0.5\n    preambles: " + json.dumps(preambles) + "\n",
        encoding="utf-8")
    base = git_commit(repo, "base")
    with open(repo / "data/train.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"question": "A new train question about apples."}) + "\n")
    report = run_audits(load_config(repo / ".eval-firewall.yml"), base=base)
    invariance = [f for f in report.findings if f.audit == "invariance"]
    assert not [f for f in invariance if f.rule == "stale-prediction"]
    flips = [f for f in invariance if f.rule == "answer-flip"]
    assert [f.match.row_id for f in flips] == ["g003~preamble"]
    assert not [f for f in invariance if f.new], [(f.rule, f.message) for f in invariance]
