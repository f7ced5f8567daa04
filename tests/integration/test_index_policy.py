"""`index.location` is part of the gate's policy: a pull request that sets, changes or removes it
(or brings it in a config new on the pull request) loosens the gate. The change is listed,
pending and not applied (the run keeps the base's value) until approved. The policy is read
from the base commit of a real git repository, as the action and `audit --base` read it."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cli_harness import CLEAN_CONFIG, EVAL, TRAIN, run

from conftest import git, git_commit, git_init, write_jsonl
from eval_firewall.audits import RULES
from eval_firewall.config import load_config
from eval_firewall.findings import Report
from eval_firewall.policy.effective import Approvals
from eval_firewall.policy.load import Gate, gate

CONFIG_FILE = ".eval-firewall.yml"


def with_index(location: str | None) -> str:
    return CLEAN_CONFIG + ("" if location is None else f"index:\n  location: {location}\n")


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def pull_request(root: Path, base: str | None, head: str | None) -> Path:
    """A repository whose main holds the ``base`` config (None: no config), and a branch
    ``pr`` whose head commit has the ``head`` config (None: the config removed)."""
    git_init(root)
    write_jsonl(root / "data/train/train.jsonl", TRAIN)
    write_jsonl(root / "data/eval/eval.jsonl", EVAL)
    if base is not None:
        (root / CONFIG_FILE).write_text(base, encoding="utf-8")
    git_commit(root, "base")
    git(root, "checkout", "-q", "-b", "pr")
    if head is not None:
        (root / CONFIG_FILE).write_text(head, encoding="utf-8")
    git_commit(root, "pull request")
    return root


def audit_gate(root: Path, approver: str | None = None, trust_head: bool = False) -> Gate:
    """The gate of the branch's head against main, ``approver`` approving the config's
    changes (the seam the action fills from the pull request's reviews)."""
    asked: list[Sequence[str]] = []

    def approvals(files: Sequence[str]) -> Approvals:
        asked.append(list(files))
        return Approvals({f: approver for f in files} if approver else {},
                         {} if approver else {f: "no approving review" for f in files})

    head = load_config(root / CONFIG_FILE, rules=RULES)
    g = gate(head, "main", rules=RULES, approvals=approvals, trust_head=trust_head)
    if any(c.direction == "loosen" for c in g.changes) and not trust_head:
        assert asked == [[CONFIG_FILE]]
    return g


def changes(g: Gate) -> list[tuple[str, str, str, str, str]]:
    return [(c.key, c.before, c.after, c.direction, c.status) for c in g.changes]


CASES = [
    # (base's location, head's location, before, after) as the policy diff shows them
    (None, "s3://corpus/index", "unset", "s3://corpus/index"),
    ("s3://corpus/index", "s3://attacker-bucket/index", "s3://corpus/index",
     "s3://attacker-bucket/index"),
    ("gs://corpus/index", "gcs://corpus/index", "gs://corpus/index", "gcs://corpus/index"),
    ("s3://corpus/index", None, "s3://corpus/index", "unset"),
]


@pytest.mark.parametrize("before,after,shown_before,shown_after", CASES,
                         ids=["set", "changed", "scheme-changed", "removed"])
def test_a_pull_request_cannot_set_change_or_remove_the_index_location(
        tmp_path: Path, before: str | None, after: str | None, shown_before: str,
        shown_after: str) -> None:
    head_text = with_index(after)
    root = pull_request(tmp_path, with_index(before), head_text)
    g = audit_gate(root)
    assert changes(g) == [("index.location", shown_before, shown_after, "loosen", "pending")]
    [change] = g.changes
    line = line_of(head_text, "location:") if after else None     # removed: no line
    assert (change.path, change.line) == (CONFIG_FILE, line)
    assert g.config.index.location == before            # the run keeps the base's value
    [finding] = g.finish(_empty_report(), RULES).audits[-1].findings
    assert finding.rule == "policy-change" and finding.severity.value == "error"
    assert finding.message.startswith(
        f"This pull request relaxes the gate: index.location {shown_before} → {shown_after}, "
        f"{change.location} — pending approval")


@pytest.mark.parametrize("before,after,shown_before,shown_after", CASES,
                         ids=["set", "changed", "scheme-changed", "removed"])
def test_an_approved_index_location_change_applies(
        tmp_path: Path, before: str | None, after: str | None, shown_before: str,
        shown_after: str) -> None:
    root = pull_request(tmp_path, with_index(before), with_index(after))
    g = audit_gate(root, approver="maintainer")
    assert changes(g) == [("index.location", shown_before, shown_after, "loosen", "approved")]
    assert g.changes[0].reviewer == "maintainer"
    assert g.config.index.location == after
    assert not g.finish(_empty_report(), RULES).audits[-1].findings


def test_an_unchanged_index_location_is_no_policy_change(tmp_path: Path) -> None:
    root = pull_request(tmp_path, with_index("s3://corpus/index"),
                        with_index("s3://corpus/index") + "fail_on: warning\n")
    g = audit_gate(root)
    assert changes(g) == [("fail_on", "error", "warning", "tighten", "applied")]
    assert (g.config.index.location, g.config.fail_on) == ("s3://corpus/index", "warning")


def test_the_location_is_shown_as_reports_show_a_url(tmp_path: Path) -> None:
    """The diff shows a location as :func:`public_url` does (the host as URLs compare it)."""
    root = pull_request(tmp_path, with_index(None), with_index("s3://Corpus.Example/Index"))
    g = audit_gate(root)
    assert changes(g) == [("index.location", "unset", "s3://corpus.example/Index", "loosen",
                           "pending")]


def test_a_config_new_on_a_pull_request_cannot_bring_an_index_location(tmp_path: Path) -> None:
    """No config at the base: the head's config is new policy and applies, but not its
    index location, which stays pending (unset for the run) until approved."""
    head_text = with_index("s3://attacker-bucket/index") + "fail_on: warning\n"
    root = pull_request(tmp_path, None, head_text)
    g = audit_gate(root)
    assert g.new_policy
    assert changes(g) == [("index.location", "unset", "s3://attacker-bucket/index", "loosen",
                           "pending")]
    assert g.changes[0].line == line_of(head_text, "location:")
    assert g.config.index.location is None
    assert (g.config.fail_on, [d.name for d in g.config.datasets]) == ("warning",
                                                                      ["train", "eval"])
    [finding] = g.finish(_empty_report(), RULES).audits[-1].findings
    assert "index.location unset → s3://attacker-bucket/index" in finding.message

    approved = audit_gate(root, approver="maintainer")
    assert changes(approved)[0][-1] == "approved"
    assert approved.config.index.location == "s3://attacker-bucket/index"
    trusted = audit_gate(root, trust_head=True)
    assert changes(trusted)[0][-1] == "trusted"
    assert trusted.config.index.location == "s3://attacker-bucket/index"


def test_a_new_config_with_a_remote_train_set_and_an_index_holds_both(tmp_path: Path) -> None:
    head_text = with_index("gs://attacker-bucket/index").replace(
        '"data/train/*.jsonl"', '"s3://attacker-bucket/train/*.jsonl"')
    root = pull_request(tmp_path, None, head_text)
    g = audit_gate(root)
    assert [(c.key, c.status) for c in g.changes] == [("datasets[train]", "pending"),
                                                      ("index.location", "pending")]
    assert [d.name for d in g.config.datasets] == ["eval"] and g.config.index.location is None


def test_audit_with_base_lists_the_index_location_pending_and_fails(tmp_path: Path) -> None:
    """Locally, `audit --base main` shows the change in the policy diff of the Markdown
    comment and fails; the data is clean and audited as the base says."""
    head_text = with_index("s3://attacker-bucket/index")
    root = pull_request(tmp_path, with_index(None), head_text)
    done = run(root, "--base", "main", "--no-cache", "-q", "--format", "markdown")
    assert done.exit_code == 1, done.output
    line = line_of(head_text, "location:")
    # escaped (report/escape.py): a zero-width space keeps the URL from being linked
    assert (f"index.location: unset → s3:\u200b//attacker\\-bucket/index, "
            f".eval\\-firewall.yml:{line} — pending approval") in done.output
    assert "relaxes the gate" in done.output.split("<details>")[0]


class CountingEndpoint:
    """An S3 endpoint on 127.0.0.1 that answers every request 404 (no such key) and notes
    it: whether a run fetched anything from a bucket."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        seen = self.requests

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                seen.append(f"{self.command} {self.path}")
                body = (b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>NoSuchKey</Code>"
                        b"<Message>none</Message></Error>")
                self.send_response(404)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[CountingEndpoint]:
    s3fs = pytest.importorskip("s3fs")
    server = CountingEndpoint()
    for key, value in {"AWS_ENDPOINT_URL": server.url, "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    s3fs.S3FileSystem.clear_instance_cache()        # a client made for another endpoint
    try:
        yield server
    finally:
        s3fs.S3FileSystem.clear_instance_cache()
        server.stop()


@pytest.mark.parametrize("base", [with_index(None), None, with_index("s3://corpus/index")],
                         ids=["set", "new-config", "changed"])
def test_a_pending_index_location_is_never_fetched(tmp_path: Path, endpoint: CountingEndpoint,
                                                   base: str | None) -> None:
    """The attack: a pull request points the index at its own bucket. Pending, the run sends
    no request there (it asks the base's bucket, if the base names one); trusted (a
    maintainer's `--trust-head-policy`), the same run does."""
    root = pull_request(tmp_path, base, with_index("s3://attacker-bucket/index"))
    (root / ".git/info/exclude").write_text("cache/\n")
    done = run(root, "--base", "main", "--cache-dir", "cache/pending", "-q", "--format", "json")
    assert done.exit_code == 1, done.output
    assert not any("/attacker-bucket" in r for r in endpoint.requests)
    if base is not None and "corpus" in base:
        assert any("/corpus/index/chunks/" in r for r in endpoint.requests)
    else:
        assert endpoint.requests == []
    # the control: the same run trusting the head asks the bucket for the train chunk
    endpoint.requests.clear()
    run(root, "--base", "main", "--cache-dir", "cache/trusted", "-q", "--trust-head-policy")
    assert any("/attacker-bucket/index/chunks/" in r for r in endpoint.requests)
    assert all("/attacker-bucket" in r for r in endpoint.requests)


def _empty_report() -> Report:
    return Report(fail_on="error", audits=[], datasets=[])
