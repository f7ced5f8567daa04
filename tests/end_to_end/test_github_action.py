"""End to end: `eval-firewall github` run as the action's container runs it, against real git
repositories and a GitHub-compatible server over real HTTP, fed GitHub's real webhook payloads.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import yaml

from action_harness import (
    CONFIG,
    EVAL,
    EVAL_ROWS,
    FORK,
    REPO,
    TOKEN,
    TRAIN,
    TRAIN_ROWS,
    ZWSP,
    dataset_repo,
    leak_lines,
    leaks,
    merge_checkout,
    open_pr,
    pr_payload,
    push_eval,
    push_payload,
    run_action,
    workflow_run_payload,
)
from conftest import ROOT, git, git_commit, write_jsonl
from github_server import GitHubServer

# --- tests ---------------------------------------------------------------------------------------

def test_one_comment_edited_in_place_then_fixed(tmp_path, github):
    # Somebody else's comment carrying our marker must never be taken over.
    github.add_comment(REPO, 7, "<!-- eval-firewall-comment: eval-firewall findings=9 -->\nhi",
                       login="mallory")
    ws, base, head1, merge1, payload = open_pr(tmp_path, github, leaks(0, 1))
    first = run_action(tmp_path, ws, "pull_request", payload, github, sha=merge1)
    assert first.code == 1, first.stderr
    ours = [c for c in github.comments_on(REPO, 7) if c["user"]["login"] == "github-actions[bot]"]
    assert len(ours) == 1
    body = ours[0]["body"]
    verdict = "❌ This pull request adds 2 leaked eval rows (exact copies)."
    assert body.splitlines()[1] == f"**{verdict}**"          # the line after the marker
    assert f"[`{base[:7]}`]({github.server_url}/{REPO}/compare/{base}...{head1})" in body
    for line in leak_lines(2):      # new violations link to their exact line at the head commit
        assert f"{github.server_url}/{REPO}/blob/{head1}/{EVAL}#L{line}" in body
    assert "**What changed:**" in body and EVAL.split("/")[-1] in body
    run1 = list(github.state.check_runs.values())[-1]
    assert (run1["head_sha"], run1["conclusion"], run1["name"]) == (head1, "failure",
                                                                     "eval-firewall")
    assert run1["output"]["title"] == verdict                  # the same verdict line
    assert run1["output"]["summary"].startswith(f"**{verdict}**\n\n")
    assert sorted(a["start_line"] for a in run1["_annotations"]) == leak_lines(2)
    assert {a["path"] for a in run1["_annotations"]} == {EVAL}
    assert first.outputs["status"] == "fail"
    assert first.outputs["findings"] == "2" and first.outputs["new-findings"] == "2"
    assert first.outputs["report-path"] == "eval-firewall-report/report.json"
    assert json.loads((ws / first.outputs["report-path"]).read_text())["summary"]["findings"] == 2
    assert (ws / first.outputs["sarif-path"]).is_file()
    assert first.summary.startswith(f"**{verdict}**\n\n")
    action = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
    assert set(first.outputs) == set(action["outputs"])      # every documented output, only

    # Second push: one more leak. The same comment is edited; no second comment.
    git(ws, "checkout", "-q", "pr")
    head2 = push_eval(ws, leaks(0, 1, 2), "one more")
    github.add_pull(REPO, 7, head2, base)
    merge2 = merge_checkout(ws, base, head2)
    second = run_action(tmp_path, ws, "pull_request",
                        pr_payload("synchronize", number=7, head=head2, base=base, before=head1),
                        github, sha=merge2)
    assert second.code == 1
    ours = [c for c in github.comments_on(REPO, 7) if c["user"]["login"] == "github-actions[bot]"]
    assert len(ours) == 1 and ours[0]["_edits"] == 1
    assert f"/blob/{head2}/{EVAL}#L{leak_lines(3)[-1]}" in ours[0]["body"]
    assert second.outputs["findings"] == "3"
    mallory = [c for c in github.comments_on(REPO, 7) if c["user"]["login"] == "mallory"]
    assert mallory[0]["_edits"] == 0 and mallory[0]["body"].endswith("hi")

    # Third push removes every leak: the comment says so, the check passes.
    git(ws, "checkout", "-q", "pr")
    head3 = push_eval(ws, EVAL_ROWS, "remove the leaks")
    github.add_pull(REPO, 7, head3, base)
    merge3 = merge_checkout(ws, base, head3)
    third = run_action(tmp_path, ws, "pull_request",
                       pr_payload("synchronize", number=7, head=head3, base=base, before=head2),
                       github, sha=merge3)
    assert third.code == 0, third.stderr
    ours = [c for c in github.comments_on(REPO, 7) if c["user"]["login"] == "github-actions[bot]"]
    assert len(ours) == 1 and ours[0]["_edits"] == 2
    assert "**Fixed:** no findings any more" in ours[0]["body"]
    assert ours[0]["body"].splitlines()[1] == "**✅ No new problems.**"
    run3 = list(github.state.check_runs.values())[-1]
    assert (run3["head_sha"], run3["conclusion"]) == (head3, "success")
    assert third.outputs["status"] == "pass" and third.outputs["findings"] == "0"


def test_huge_report_is_cut_for_the_comment_and_annotated_in_batches(tmp_path, github):
    n = 160
    ws, base, head, merge, payload = open_pr(tmp_path, github, leaks(*range(n)))
    run = run_action(tmp_path, ws, "pull_request", payload, github, sha=merge)
    assert run.code == 1, run.stderr
    (comment,) = github.comments_on(REPO, 7)
    assert len(comment["body"]) <= 65_536
    assert "job summary" in comment["body"] and "/actions/runs/4242" in comment["body"]
    assert f"of {n} findings" in comment["body"]
    # The job summary has every finding.
    assert all(f"{EVAL}#L{line})" in run.summary for line in leak_lines(n))
    check = list(github.state.check_runs.values())[-1]
    assert check["_batches"] == [50, 50, 50, 10]
    assert sorted(a["start_line"] for a in check["_annotations"]) == leak_lines(n)
    assert len(check["output"]["summary"]) <= 65_535
    assert run.outputs["findings"] == str(n)


def test_check_run_forbidden_falls_back_to_a_commit_status(tmp_path, github):
    github.state.forbid_checks = True
    ws, base, head, merge, payload = open_pr(tmp_path, github, leaks(3))
    run = run_action(tmp_path, ws, "pull_request", payload, github, sha=merge,
                     **{"check-name": "datasets / eval-firewall"})
    assert run.code == 1
    (status,) = github.state.statuses
    assert (status["_sha"], status["state"], status["context"]) == (
        head, "failure", "datasets / eval-firewall")
    assert status["description"] == "❌ This pull request adds 1 leaked eval row (exact copy)."
    assert not github.state.check_runs
    assert "::warning::" in run.stdout and "checks: write" in run.stdout
    assert len(github.comments_on(REPO, 7)) == 1      # the comment is still posted


def test_read_only_token_on_a_branch_pull_request_names_the_permission(tmp_path, github):
    github.state.read_only = True
    ws, base, head, merge, payload = open_pr(tmp_path, github, leaks(3))
    run = run_action(tmp_path, ws, "pull_request", payload, github, sha=merge)
    assert run.code == 2
    assert "statuses: write" in run.stderr
    assert run.stdout.count("::error::") == 1
    assert (ws / "eval-firewall-report/report.json").is_file()   # the report is kept anyway


HOSTILE = ('<img src=x onerror=alert(1)> ![pixel](https://evil.example/p.png) '
           '[click me](https://evil.example/login) @octocat please review #12 '
           '<script>alert(1)</script> <!-- x --> | cell | `code` **bold**')


def test_hostile_dataset_text_is_inert_everywhere(tmp_path, github):
    train = TRAIN_ROWS + [{"question": HOSTILE, "answer": "42"}]
    ws, base = dataset_repo(tmp_path / "ws")
    write_jsonl(ws / TRAIN, train)
    base = git_commit(ws, "hostile train row")
    head = push_eval(ws, EVAL_ROWS + [{"question": HOSTILE, "answer": "42"}], "leak it")
    github.add_pull(REPO, 7, head, base)
    merge = merge_checkout(ws, base, head)
    run = run_action(tmp_path, ws, "pull_request",
                     pr_payload("reopened", number=7, head=head, base=base), github, sha=merge)
    assert run.code == 1, run.stderr
    (comment,) = github.comments_on(REPO, 7)
    check = list(github.state.check_runs.values())[-1]
    texts = {"comment": comment["body"], "summary": check["output"]["summary"],
             "job summary": run.summary,
             "annotations": json.dumps(check["_annotations"], ensure_ascii=False)}
    assert "onerror" in comment["body"]          # the text is shown ...
    for where, text in texts.items():            # ... but does nothing
        if where != "annotations":               # plain text there: markup shows as text
            assert "<img" not in text and "<script" not in text, where
            assert "<!-- x" not in text, where
            assert "](http" not in text.replace(f"]({github.server_url}", ""), where
        assert "https://evil" not in text, where          # no autolink either
        assert "@octocat" not in text, where     # a zero-width space keeps it from pinging
        assert "#12" not in text, where
    assert f"@{ZWSP}octocat" in check["_annotations"][0]["message"]
    assert "https://evil" not in check["_annotations"][0]["message"]


def test_fork_two_step(tmp_path, github):
    # Step 1: `pull_request` from a fork. The token is read-only: audit, save, post nothing.
    ws, base, head, merge, _ = open_pr(tmp_path, github, leaks(4, 5))
    github.add_pull(REPO, 7, head, base, head_repo=FORK)
    github.add_token("ghs_readonly", "github-actions[bot]", app=True)
    payload = pr_payload("opened", number=7, head=head, base=base, head_repo=FORK)
    first = run_action(tmp_path / "one", ws, "pull_request", payload, github, sha=merge,
                       token="ghs_readonly") if (tmp_path / "one").mkdir() is None else None
    assert first.code == 1, first.stderr
    assert not github.requests("POST") and not github.requests("PATCH")
    assert "fork" in first.stderr

    # actions/upload-artifact + actions/download-artifact: the report directory, copied into
    # the workspace of the trusted workflow_run job, which has no checkout of the PR at all.
    trusted = tmp_path / "trusted"
    shutil.copytree(ws / "eval-firewall-report", trusted / "eval-firewall-report")
    (tmp_path / "two").mkdir()
    second = run_action(tmp_path / "two", trusted, "workflow_run",
                        workflow_run_payload(head=head, number=7, listed=False), github)
    assert second.code == 1, second.stderr
    (comment,) = github.comments_on(REPO, 7)
    assert f"/blob/{head}/{EVAL}#L{leak_lines(2)[0]}" in comment["body"]
    check = list(github.state.check_runs.values())[-1]
    assert (check["head_sha"], check["conclusion"]) == (head, "failure")
    assert sorted(a["start_line"] for a in check["_annotations"]) == leak_lines(2)
    assert second.outputs["findings"] == "2"

    # A forged artifact naming another pull request is refused, nothing posted.
    github.add_pull(REPO, 8, "f" * 40, base)
    context = trusted / "eval-firewall-report/pull-request.json"
    data = json.loads(context.read_text())
    context.write_text(json.dumps({**data, "pull_request": 8}))
    writes = len(github.requests("POST")) + len(github.requests("PATCH"))
    (tmp_path / "three").mkdir()
    third = run_action(tmp_path / "three", trusted, "workflow_run",
                       workflow_run_payload(head=head, number=7, listed=False), github)
    assert third.code == 2 and "not posting" in third.stderr
    assert len(github.requests("POST")) + len(github.requests("PATCH")) == writes


def test_transient_failures_are_retried(tmp_path, github):
    github.fail("POST", r"/issues/7/comments$", "5xx")
    github.fail("GET", r"/issues/7/comments$", "5xx")
    github.fail("POST", r"/check-runs$", "secondary")
    ws, base, head, merge, payload = open_pr(tmp_path, github, leaks(6))
    run = run_action(tmp_path, ws, "pull_request", payload, github, sha=merge)
    assert run.code == 1, run.stderr
    assert [r["status"] for r in github.requests("POST", r"/issues/7/comments$")] == [502, 201]
    assert [r["status"] for r in github.requests("POST", r"/check-runs$")] == [403, 201]
    assert "eval-firewall: GitHub: Retrying after 1 seconds" in run.stderr
    assert len(github.comments_on(REPO, 7)) == 1 and len(github.state.check_runs) == 1


def test_shallow_checkout_fetches_the_base_or_names_the_fetch_depth(tmp_path, github):
    origin, base = dataset_repo(tmp_path / "origin")
    push_eval(origin, leaks(7), "leak")
    (origin / "NOTES.md").write_text("two commits on the branch\n", encoding="utf-8")
    head = git_commit(origin, "notes")
    merge = merge_checkout(origin, base, head)
    git(origin, "update-ref", "refs/pull/7/merge", merge)
    github.add_pull(REPO, 7, head, base)
    payload = pr_payload("synchronize", number=7, head=head, base=base, before=base)

    def clone(name: str, ref: str, depth: int) -> Path:
        path = tmp_path / name
        git(tmp_path, "clone", "-q", "--no-checkout", f"--depth={depth}",
            f"file://{origin}", str(path))
        git(path, "fetch", "-q", f"--depth={depth}", "origin", ref)
        git(path, "checkout", "-q", "--detach", "FETCH_HEAD")
        return path

    # fetch-depth 1 with the origin reachable (checkout keeps its credentials): fetched.
    fetched = clone("fetched", "refs/pull/7/merge", 1)
    (tmp_path / "r1").mkdir()
    ok = run_action(tmp_path / "r1", fetched, "pull_request", payload, github, sha=merge)
    assert ok.code == 1, ok.stderr
    assert ok.outputs["new-findings"] == "1"

    # No way to fetch it: one line saying which fetch-depth to use.
    offline = clone("offline", "refs/pull/7/merge", 1)
    git(offline, "remote", "remove", "origin")
    (tmp_path / "r2").mkdir()
    bad = run_action(tmp_path / "r2", offline, "pull_request", payload, github, sha=merge)
    assert bad.code == 2
    (line,) = [l for l in bad.stderr.splitlines() if l.startswith("eval-firewall: error:")]
    assert "fetch-depth: 2" in line and base[:7] in line
    failed = list(github.state.check_runs.values())[-1]      # the required check says why
    assert (failed["head_sha"], failed["conclusion"]) == (head, "failure")
    assert failed["output"]["title"] == "eval-firewall could not run"
    assert "fetch\\-depth: 2" in failed["output"]["summary"]

    # The PR head checked out (not the merge), shallow: the merge base needs full history.
    head_only = clone("head", head, 1)
    git(head_only, "remote", "remove", "origin")
    (tmp_path / "r3").mkdir()
    bad = run_action(tmp_path / "r3", head_only, "pull_request", payload, github, sha=head)
    assert bad.code == 2 and "fetch-depth: 0" in bad.stderr
    # The first run's check and comment, then one failed check per run that could not audit.
    assert [r["path"].rsplit("/", 1)[-1] for r in github.requests("POST")] == [
        "check-runs", "comments", "check-runs", "check-runs"]


def test_push_audits_against_the_previous_commit_without_a_comment(tmp_path, github):
    ws, base = dataset_repo(tmp_path / "ws")
    git(ws, "checkout", "-q", "-b", "main-work")
    after = push_eval(ws, leaks(8), "push a leak", branch="main-work")
    # The runner's user owns the checkout, the container runs as root: git must be told the
    # workspace is safe. Here the checkout is owned by someone else than the test's user.
    if os.geteuid() == 0:
        for p in [ws, *ws.rglob("*")]:
            os.lchown(p, 4321, 4321)
    run = run_action(tmp_path, ws, "push", push_payload(before=base, after=after), github,
                     sha=after)
    assert run.code == 1, run.stderr
    assert not github.state.comments
    check = list(github.state.check_runs.values())[-1]
    assert (check["head_sha"], check["conclusion"]) == (after, "failure")
    assert run.outputs["new-findings"] == "1"
    assert "Compared with" in run.summary and base in run.summary


def test_comment_never_and_events_without_work(tmp_path, github):
    ws, base, head, merge, payload = open_pr(tmp_path, github, leaks(9))
    run = run_action(tmp_path, ws, "pull_request", payload, github, sha=merge, comment="never")
    assert run.code == 1 and not github.state.comments and len(github.state.check_runs) == 1
    closed = {**payload, "action": "closed"}
    (tmp_path / "closed").mkdir()
    run = run_action(tmp_path / "closed", ws, "pull_request", closed, github, sha=merge)
    assert run.code == 0 and "nothing to do" in run.stderr
    (tmp_path / "bad").mkdir()
    run = run_action(tmp_path / "bad", ws, "pull_request", payload, github, sha=merge,
                     comment="sometimes")
    assert run.code == 2 and "comment" in run.stderr and "sometimes" in run.stderr


def test_two_step_with_post_false_for_a_branch_pull_request(tmp_path):
    server = GitHubServer().start()
    try:
        server.add_repo(REPO)
        server.add_token(TOKEN, "github-actions[bot]", app=True)
        ws, base, head, merge, payload = open_pr(tmp_path, server, leaks(10), number=2)
        (tmp_path / "one").mkdir()
        first = run_action(tmp_path / "one", ws, "pull_request", payload, server, sha=merge,
                           post="false")
        assert first.code == 1 and not server.state.log     # not a single request
        (tmp_path / "two").mkdir()
        trusted = tmp_path / "trusted"
        shutil.copytree(ws / "eval-firewall-report", trusted / "eval-firewall-report")
        # GitHub lists a branch pull request in the workflow_run payload: no lookup needed.
        second = run_action(tmp_path / "two", trusted, "workflow_run",
                            workflow_run_payload(head=head, number=2, listed=True), server,
                            **{"fail-on": "never"})
        assert second.code == 0, second.stderr           # the trusted side's fail-on wins
        assert not server.requests("GET", r"/pulls/")
        (comment,) = server.comments_on(REPO, 2)
        assert "**✅ Passes (fail-on: never), with 1 leaked eval row (exact copy) added by this " \
               "pull request.**" in comment["body"]
        assert list(server.state.check_runs.values())[0]["conclusion"] == "neutral"
    finally:
        server.stop()


def test_pull_request_target_never_runs_the_config_command(tmp_path, github):
    ws, base, head, merge, payload = open_pr(tmp_path, github, leaks(11))
    # The pull request adds a prediction command to the config: it must not run.
    git(ws, "checkout", "-q", "pr")
    marker = tmp_path / "PWNED"
    (ws / ".eval-firewall.yml").write_text(
        CONFIG + f"  invariance:\n    command: touch {marker}\n", encoding="utf-8")
    head = git_commit(ws, "config: run my script")
    github.add_pull(REPO, 7, head, base)
    run = run_action(tmp_path, ws, "pull_request_target",
                     pr_payload("opened", number=7, head=head, base=base), github, sha=base)
    assert run.code == 1, run.stderr
    assert not marker.exists()
    report = json.loads((ws / "eval-firewall-report/report.json").read_text())
    (inv,) = [a for a in report["audits"] if a["audit"] == "invariance"]
    assert inv["skipped"]
    assert len(github.comments_on(REPO, 7)) == 1


def test_new_findings_first_existing_ones_collapsed(tmp_path, github):
    ws, _ = dataset_repo(tmp_path / "ws")
    write_jsonl(ws / EVAL, leaks(20))                  # a leak already on the base branch
    base = git_commit(ws, "base with an old leak")
    head = push_eval(ws, leaks(20, 21), "a new leak")
    github.add_pull(REPO, 7, head, base)
    merge = merge_checkout(ws, base, head)
    run = run_action(tmp_path, ws, "pull_request",
                     pr_payload("opened", number=7, head=head, base=base), github, sha=merge)
    assert run.code == 1, run.stderr
    assert run.outputs["findings"] == "2" and run.outputs["new-findings"] == "1"
    body = github.comments_on(REPO, 7)[0]["body"]
    old_line, new_line = leak_lines(2)
    new_at = body.index(f"{EVAL}#L{new_line})")
    details = body.index("<details><summary>Repository health: ")
    assert body.index("### New in this pull request") < new_at
    assert "1 finding already present at the base revision:" in body[details:]
    old_at = body.index(f"{EVAL}#L{old_line})")
    assert new_at < details < old_at              # the new one in the open, the old one folded
    notes = list(github.state.check_runs.values())[-1]["_annotations"]
    assert [(a["start_line"], a["title"]) for a in notes] == [
        (new_line, "exact-duplicate (new)"), (old_line, "exact-duplicate")]
