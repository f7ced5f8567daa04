"""Golden files of the pull-request comment, from real audits of small git repositories.

Four pull requests on a repository whose base already has two leaked eval rows: one that adds
a clean row, one that leaks (an exact copy and a paraphrase), one that fixes everything and
one that only waives a finding. Each comment is compared with ``tests/snapshots/comment-*.md``
and rendered with cmark-gfm (GitHub's renderer) to check what a reviewer sees.

After an intended change to the templates or the renderer, regenerate the snapshots and read
the diff before committing::

    UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/end_to_end/test_comment_golden.py
    git diff tests/snapshots/

The commits of each run are replaced by fixed SHAs (and the version by a fixed one) so that the
snapshots do not change from run to run. The waiver case sets the waiver on the finding as the
engine does when a pull request adds it to the waiver file (``Finding.waived`` with
``Waiver.new``); reading the waiver file is the engine's job, not the comment's.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
from markdown_checks import assert_snapshot, parse_html, to_html

from conftest import BASIC_CONFIG, git_commit, git_init, gsm8k, write_jsonl
from eval_firewall.config import load_config
from eval_firewall.engine import run_audits
from eval_firewall.findings import Report
from eval_firewall.github import check
from eval_firewall.github.comment import Target, comment_body
from eval_firewall.report.verdict import verdict_line

ROOT = Path(__file__).resolve().parents[2]
CONFIG = (BASIC_CONFIG.replace("    semantic: {enabled: false}\n",
                               "    semantic: {retriever: exact}\n")
          + "  provenance:\n    enabled: false\n")
PAIRS = [json.loads(line) for line in
         (Path(__file__).parents[1] / "data/paraphrase_pairs.jsonl").read_text().splitlines()]
PARAPHRASE = next(p for p in PAIRS if p["label"] == 1)
TRAIN = [{"question": r["question"], "answer": r["answer"]} for r in gsm8k("train", 60)]
TRAIN.append({"question": PARAPHRASE["a"], "answer": "#### 3"})
CLEAN = [{"question": r["question"], "answer": r["answer"]} for r in gsm8k("test")[900:910]]
OLD_LEAKS = [TRAIN[3], TRAIN[7]]            # already on the base branch
BASE_ROWS = CLEAN + OLD_LEAKS
NEW_CLEAN = {"question": gsm8k("test")[950]["question"], "answer": "#### 1"}
COPY = TRAIN[11]
REWORDED = {"question": PARAPHRASE["b"], "answer": "#### 3"}

SERVER, REPO = "https://github.com", "octo-org/datasets"
BASE_SHA, HEAD_SHA = "1f0e" * 10, "c0de" * 10
TARGET = Target(SERVER, REPO, HEAD_SHA)
RUN_URL = f"{SERVER}/{REPO}/actions/runs/4242"
EVAL = "data/eval/eval.jsonl"


def pull_request(tmp_path: Path, head_rows: list[dict], extra: dict[str, str] | None = None
                 ) -> Report:
    """Commit the base (BASE_ROWS), then the pull request's eval rows and files; audit it."""
    (tmp_path / "repo").mkdir(parents=True)
    root = git_init(tmp_path / "repo")
    write_jsonl(root / "data/train/train.jsonl", TRAIN)
    write_jsonl(root / EVAL, BASE_ROWS)
    (root / ".eval-firewall.yml").write_text(CONFIG, encoding="utf-8")
    base = git_commit(root, "base")
    write_jsonl(root / EVAL, head_rows)
    for name, text in (extra or {}).items():
        (root / name).write_text(text, encoding="utf-8")
    git_commit(root, "pull request")
    report = run_audits(load_config(root / ".eval-firewall.yml"), base=base,
                        cache_dir=tmp_path / "cache")
    assert report.base == base
    return dataclasses.replace(report, base=BASE_SHA, version="0.1.0")  # a frozen report


def render(report: Report, previous: int | None = None) -> str:
    return comment_body(report, target=TARGET, check_name="eval-firewall", run_url=RUN_URL,
                        previous=previous)


def check_rendering(name: str, report: Report, body: str) -> str:
    """The snapshot, and what GitHub makes of it; returns the verdict line."""
    assert_snapshot(f"comment-{name}", body)
    marker, first, blank = body.splitlines()[:3]
    assert marker.startswith("<!-- eval-firewall-comment: eval-firewall findings=")
    verdict = verdict_line(report)
    assert first == f"**{verdict}**" and blank == ""
    assert check.title(report) == verdict           # the check run says the same
    assert check.summary(report, TARGET, RUN_URL).startswith(f"**{verdict}**\n\n")
    # Every </details> is followed by a blank line; no section is empty.
    assert re.findall(r"</details>\n(?!\n)", body) == []
    assert not re.search(r"\|---[-|:]*\n\n|</summary>\n\n</details>", body)
    html = to_html(body)
    page = parse_html(html)
    text = "".join(page.text)
    # No literal emphasis markers left (the "_114 more…_" bug), no link a row put there.
    assert "_" not in text and "<em>" not in html
    hrefs = [v for k, v in page.attrs if k == "href"]
    assert all(h.startswith(f"{SERVER}/{REPO}/") for h in hrefs), hrefs
    # The header lines are paragraphs of their own, the verdict the first.
    paragraphs = re.findall(r"<p>(.*?)</p>", html, flags=re.S)
    assert paragraphs[0] == f"<strong>{verdict}</strong>"
    assert all("\n" not in p for p in paragraphs[:3])
    # Health folded, figures folded: nothing opens by itself in a pull request.
    assert "<details open" not in html and html.count("<details>") == html.count("</details>")
    assert re.search(r"<details><summary>Repository health: ", html)
    assert len(body) <= 65_536
    return verdict


def new_rows(body: str) -> list[str]:
    if "### New in this pull request" not in body:
        return []
    table = body.split("### New in this pull request")[1].split("\n\n")[1]
    return table.splitlines()[2:]


@pytest.mark.model
def test_clean_pull_request_on_a_repository_with_findings(tmp_path):
    report = pull_request(tmp_path, BASE_ROWS + [NEW_CLEAN])
    body = render(report)
    verdict = check_rendering("clean", report, body)
    assert verdict == "✅ No new problems. 2 findings already present (not blocking)."
    assert report.status == "pass" and check.conclusion(report) == "neutral"
    assert new_rows(body) == []
    assert f"[`{BASE_SHA[:7]}`]({SERVER}/{REPO}/compare/{BASE_SHA}...{HEAD_SHA})" in body
    health = body.split("<details><summary>Repository health")[1]
    assert "| Overlap | 2 | 0 | 0 | pre-existing |" in health
    for line in (11, 12):        # the old leaks, folded, linked to their lines at the head
        assert f"({SERVER}/{REPO}/blob/{HEAD_SHA}/{EVAL}#L{line})" in health


@pytest.mark.model
def test_leaking_pull_request(tmp_path):
    report = pull_request(tmp_path, BASE_ROWS + [COPY, REWORDED])
    body = render(report)
    verdict = check_rendering("leak", report, body)
    assert verdict == ("❌ This pull request adds 2 leaked eval rows (1 exact copy, "
                       "1 paraphrase). 2 findings already present are not blocking.")
    new = [f for f in report.findings if f.new]
    assert sorted(f.rule for f in new) == ["exact-duplicate", "paraphrase"]
    rows = new_rows(body)
    assert len(rows) == 2
    for f in new:
        (row,) = [r for r in rows if f"`{f.short_id}`" in r]
        assert f"[{EVAL}:{f.line}]({SERVER}/{REPO}/blob/{HEAD_SHA}/{EVAL}#L{f.line})" in row
        assert f"data/train/train.jsonl:{f.match.line}]" in row
        assert ("%" in row) == (f.rule == "paraphrase")   # similarity, none on exact copies
    assert "(same text)" in next(r for r in rows if "Exact copy" in r)
    # The old leaks are in the health section only.
    new_part, health = body.split("<details><summary>Repository health")
    assert "#L11)" not in new_part and "#L11)" in health
    assert "| Overlap | 4 | 0 | 0 | ❌ fail |" in health


@pytest.mark.model
def test_pull_request_that_fixes_everything(tmp_path):
    report = pull_request(tmp_path, CLEAN)
    body = render(report, previous=2)
    verdict = check_rendering("fixed", report, body)
    assert verdict == "✅ No new problems."
    assert report.findings == [] and check.conclusion(report) == "success"
    assert "**Fixed:** no findings any more." in body.split("\n\n")[1]
    assert "<table>" in to_html(body)          # the dataset and audit tables, folded
    assert "already present" not in body


@pytest.mark.model
def test_pull_request_that_only_waives_a_finding(tmp_path):
    # The finding already present at line 12, by its fingerprint (content-based: the same in
    # any checkout); the pull request adds a real waiver file that accepts it.
    unwaived = pull_request(tmp_path / "unwaived", BASE_ROWS, {"NOTES.md": "no data change\n"})
    (finding,) = [f for f in unwaived.findings if f.line == 12]
    waivers = (f"- fingerprint: {finding.fingerprint}\n"
               "  reason: \"kept on purpose: the canary row of @data-team\"\n"
               "  approved_by: \"@alice\"\n")
    report = pull_request(tmp_path / "waived", BASE_ROWS,
                          {".eval-firewall-waivers.yml": waivers})
    (waived,) = [f for f in report.findings if f.waived]
    assert waived.fingerprint == finding.fingerprint and waived.waived.new
    body = render(report)
    verdict = check_rendering("waiver", report, body)
    assert verdict == ("✅ No new problems. 1 finding already present (not blocking). "
                       "This pull request waives 1 finding.")
    assert "> ⚠️ **This pull request waives 1 finding.**" in body
    waived = body.split("<details><summary>Waived findings: 1, 1 waived by this pull request"
                        "</summary>")[1].split("</details>")[0]
    assert "kept on purpose: the canary row of @\u200bdata\\-team (approved by @\u200balice)" \
        in waived and "waived by this pull request" in waived
    assert "#L12)" in waived and "#L12)" not in body.split("<details><summary>Repository")[1]


@pytest.mark.parametrize("doc", ["README.md", "docs/index.md"])
def test_readme_excerpt_is_the_leaking_comment(doc):
    """The excerpt of the comment in the README and on the docs' home page is a piece of the
    leaking snapshot, line by line."""
    readme = (ROOT / doc).read_text(encoding="utf-8")
    excerpt = readme.split("<!-- comment-excerpt -->\n```markdown\n")[1].split("```")[0]
    snapshot = (Path(__file__).parents[1] / "snapshots/comment-leak.md").read_text(encoding="utf-8")
    snapshot = re.sub(r"\]\(https://github\.com/[^)]*\)", "](…)", snapshot)
    lines = [line for line in excerpt.splitlines() if line and line != "..."]
    assert len(lines) >= 5
    assert all(line in snapshot.splitlines() for line in lines), \
        [line for line in lines if line not in snapshot.splitlines()]
