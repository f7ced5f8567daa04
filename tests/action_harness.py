"""Driving the action as GitHub does: its container's entrypoint (`eval-firewall github`) in a
subprocess with the environment GitHub gives a Docker action, against real git repositories and
the local GitHub-compatible server, fed GitHub's real webhook payloads (tests/data/).

Shared by the end-to-end action tests and the security tests.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from conftest import BASIC_CONFIG, WEBHOOKS, git, git_commit, git_init, gsm8k, write_jsonl
from github_server import GitHubServer

REPO = "octo-org/datasets"
FORK = "contributor/datasets"
TOKEN = "ghs_0123456789abcdefghijklmnopqrstuvwxyzAB"        # an installation token
EVAL = "data/eval/eval.jsonl"
TRAIN = "data/train/train.jsonl"
CLI = Path(sys.executable).parent / "eval-firewall"
ZWSP = "\u200b"


# --- the GitHub side -------------------------------------------------------------------------

def _retarget(payload: dict, repo: str) -> dict:
    """The example payloads are for Codertocat/Hello-World: point every name and URL at ours."""
    text = json.dumps(payload).replace("Codertocat/Hello-World", repo)
    return json.loads(text)


def pr_payload(action: str, *, number: int, head: str, base: str, before: str | None = None,
               head_repo: str = REPO) -> dict:
    payload = json.loads((WEBHOOKS / f"pull_request.{action}.payload.json").read_text())
    payload = _retarget(payload, REPO)
    payload["number"] = number
    pr = payload["pull_request"]
    pr["number"] = number
    pr["head"]["sha"], pr["base"]["sha"] = head, base
    pr["head"]["repo"]["full_name"] = head_repo
    if action == "synchronize":
        payload["before"], payload["after"] = before, head
    return payload


def review_payload(action: str, *, number: int, head: str, base: str, reviewer: str,
                   review_id: int, state: str | None = None, commit: str | None = None,
                   author: str = "contributor", head_repo: str = REPO) -> dict:
    """GitHub's real pull_request_review payload (submitted or dismissed), retargeted: the
    action reads the reviews from the API, never this payload's review."""
    payload = json.loads((WEBHOOKS / f"pull_request_review.{action}.payload.json").read_text())
    payload = _retarget(payload, REPO)
    pr = payload["pull_request"]
    pr["number"] = number
    pr["head"]["sha"], pr["base"]["sha"] = head, base
    pr["head"]["repo"]["full_name"] = head_repo
    pr["user"]["login"] = author
    review = payload["review"]
    review["id"], review["user"]["login"], review["commit_id"] = review_id, reviewer, commit or head
    review["state"] = state or ("dismissed" if action == "dismissed" else "approved")
    return payload


def push_payload(*, before: str, after: str) -> dict:
    # The shared examples have no push payload: build one from the real repository object
    # with the documented push fields.
    example = _retarget(json.loads((WEBHOOKS / "pull_request.opened.payload.json").read_text()),
                        REPO)
    return {"ref": "refs/heads/main", "before": before, "after": after, "created": False,
            "deleted": False, "forced": False, "commits": [], "head_commit": None,
            "repository": example["repository"], "pusher": {"name": "octocat"},
            "sender": example["sender"]}


def workflow_run_payload(*, head: str, number: int, listed: bool) -> dict:
    payload = json.loads(
        (WEBHOOKS / "workflow_run.completed.with-pull-requests.payload.json").read_text())
    payload = _retarget(payload, REPO)
    text = json.dumps(payload).replace("octo-org/octo-repo", REPO)
    payload = json.loads(text)
    run = payload["workflow_run"]
    run["event"], run["head_sha"], run["conclusion"] = "pull_request", head, "failure"
    run["head_repository"]["full_name"] = FORK
    if listed:
        run["pull_requests"][0]["number"] = number
        run["pull_requests"][0]["head"]["sha"] = head
    else:
        run["pull_requests"] = []      # what GitHub sends for a fork's pull request
    return payload


# --- the runner side -------------------------------------------------------------------------

@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    outputs: dict[str, str]
    summary: str


def parse_outputs(text: str) -> dict[str, str]:
    out, lines, i = {}, text.split("\n"), 0
    while i < len(lines):
        m = re.fullmatch(r"([\w-]+)<<(\S+)", lines[i])
        if m:
            j = lines.index(m[2], i + 1)
            out[m[1]] = "\n".join(lines[i + 1:j])
            i = j
        i += 1
    return out


def run_action(tmp: Path, workspace: Path, event: str, payload: dict, server: GitHubServer,
               *, sha: str | None = None, token: str = TOKEN, **inputs: str) -> Run:
    """Run the container's entrypoint with the environment GitHub gives a Docker action."""
    home = tmp / "home"
    runner = tmp / "runner"
    for d in (home, runner):
        d.mkdir(exist_ok=True)
    event_path = runner / "event.json"
    event_path.write_text(json.dumps(payload), encoding="utf-8")
    output, summary = runner / "output", runner / "summary"
    for f in (output, summary):
        f.write_text("", encoding="utf-8")
    env = {
        "PATH": os.environ["PATH"], "HOME": str(home), "HF_HUB_OFFLINE": "1",
        "GITHUB_ACTIONS": "true", "CI": "true",
        "GITHUB_EVENT_NAME": event, "GITHUB_EVENT_PATH": str(event_path),
        "GITHUB_REPOSITORY": REPO, "GITHUB_REPOSITORY_OWNER": REPO.split("/")[0],
        "GITHUB_WORKSPACE": str(workspace), "GITHUB_SHA": sha or "",
        "GITHUB_API_URL": server.api_url, "GITHUB_SERVER_URL": server.server_url,
        "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(output),
        "GITHUB_RUN_ID": "4242", "GITHUB_TOKEN": token,
        "INPUT_GITHUB-TOKEN": token, "INPUT_CONFIG": ".eval-firewall.yml",
        "INPUT_COMMENT": "on-findings", "INPUT_CHECK-NAME": "eval-firewall",
        "INPUT_FAIL-ON": "", "INPUT_REPORT-DIR": "eval-firewall-report",
        "INPUT_CACHE-DIR": ".eval-firewall-cache",
    }
    if os.environ.get("PYTHONPATH"):     # the source under test, when not the installed one
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    env.update({f"INPUT_{k.upper().replace('_', '-')}": v for k, v in inputs.items()})
    done = subprocess.run([str(CLI), "github"], cwd=workspace, env=env, capture_output=True,
                          text=True, timeout=120)
    assert token not in done.stdout and token not in done.stderr, "the token was printed"
    assert "Traceback" not in done.stderr, done.stderr
    return Run(done.returncode, done.stdout, done.stderr,
               parse_outputs(output.read_text(encoding="utf-8")),
               summary.read_text(encoding="utf-8"))


# --- dataset repositories ------------------------------------------------------------------------

# Overlap only (no provenance notes): every finding is a leak the test planted.
CONFIG = BASIC_CONFIG + "  provenance:\n    enabled: false\n"
TRAIN_ROWS = gsm8k("train", 400)
EVAL_ROWS = gsm8k("test", 12)


def dataset_repo(path: Path) -> tuple[Path, str]:
    """A repository whose base commit is clean: returns (path, base sha)."""
    path.mkdir(parents=True)
    git_init(path)
    write_jsonl(path / TRAIN, TRAIN_ROWS)
    write_jsonl(path / EVAL, EVAL_ROWS)
    (path / ".eval-firewall.yml").write_text(CONFIG, encoding="utf-8")
    return path, git_commit(path, "base: clean eval set")


def push_eval(path: Path, rows: list[dict], message: str, branch: str = "pr") -> str:
    """Commit ``rows`` as the eval set on ``branch``; returns the commit."""
    if git(path, "rev-parse", "--abbrev-ref", "HEAD") != branch:
        existing = git(path, "branch", "--list", branch)
        git(path, "checkout", "-q", *([] if existing else ["-b"]), branch)
    write_jsonl(path / EVAL, rows)
    return git_commit(path, message)


def merge_checkout(path: Path, base: str, head: str) -> str:
    """Check out what actions/checkout gives a pull_request run: refs/pull/N/merge."""
    git(path, "checkout", "-q", "--detach", base)
    git(path, "merge", "-q", "--no-ff", "-m", f"Merge {head} into {base}", head)
    return git(path, "rev-parse", "HEAD")


def leaks(*indices: int) -> list[dict]:
    """The clean eval rows plus copies of train rows (exact leaks), one per index."""
    return EVAL_ROWS + [TRAIN_ROWS[i] for i in indices]


def leak_lines(n: int) -> list[int]:
    return [len(EVAL_ROWS) + 1 + i for i in range(n)]


def open_pr(tmp_path: Path, server: GitHubServer, rows: list[dict], number: int = 7):
    ws, base = dataset_repo(tmp_path / "ws")
    head = push_eval(ws, rows, "add eval rows")
    server.add_pull(REPO, number, head, base)
    merge = merge_checkout(ws, base, head)
    payload = pr_payload("opened", number=number, head=head, base=base)
    return ws, base, head, merge, payload


