"""The gate's policy comes from the base (policy issue): the action against the local GitHub
server, with GitHub's real pull_request and pull_request_review payloads, real git
repositories and the real CLI. A pull request cannot loosen its own check: a loosening is
listed, not applied, and fails until someone else approves the head commit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from action_harness import (
    CONFIG,
    EVAL,
    EVAL_ROWS,
    REPO,
    TRAIN,
    TRAIN_ROWS,
    leaks,
    merge_checkout,
    pr_payload,
    push_payload,
    review_payload,
    run_action,
)
from conftest import git, git_commit, git_init, write_jsonl
from eval_firewall.cli import main
from eval_firewall.policy.waivers import WAIVERS_FILE, entry_text

AUTHOR = "contributor"


def repo_with(path: Path, base_files: dict[str, str] | None = None,
              config: str | None = CONFIG) -> tuple[Path, str]:
    """A repository whose base commit (main) is clean; returns (path, base sha)."""
    path.mkdir(parents=True)
    git_init(path)
    write_jsonl(path / TRAIN, TRAIN_ROWS)
    write_jsonl(path / EVAL, EVAL_ROWS)
    if config is not None:
        (path / ".eval-firewall.yml").write_text(config, encoding="utf-8")
    for name, text in (base_files or {}).items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text, encoding="utf-8")
    return path, git_commit(path, "base")


def commit_pr(ws: Path, rows: list[dict], files: dict[str, str], message: str = "pr") -> str:
    """Commit ``rows`` as the eval set and ``files`` on the pr branch; returns the commit."""
    if git(ws, "rev-parse", "--abbrev-ref", "HEAD") != "pr":
        existing = git(ws, "branch", "--list", "pr")
        git(ws, "checkout", "-q", *([] if existing else ["-b"]), "pr")
    write_jsonl(ws / EVAL, rows)
    for name, text in files.items():
        (ws / name).write_text(text, encoding="utf-8")
    return git_commit(ws, message)


def open_pr(tmp_path: Path, github, rows: list[dict], files: dict[str, str],
            base_files: dict[str, str] | None = None, base_config: str | None = CONFIG):
    ws, base = repo_with(tmp_path / "ws", base_files, base_config)
    head = commit_pr(ws, rows, files)
    github.add_pull(REPO, 7, head, base, author=AUTHOR)
    github.set_commit_author(head, AUTHOR)
    merge = merge_checkout(ws, base, head)
    return ws, base, head, merge


def report_of(ws: Path, run) -> dict:
    return json.loads((ws / run.outputs["report-path"]).read_text("utf-8"))


def last_check(github) -> dict:
    return list(github.state.check_runs.values())[-1]


def comment_of(github) -> str:
    [comment] = github.comments_on(REPO, 7)
    return comment["body"]


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def review_run(tmp_path, ws, github, *, head, base, merge, reviewer, review_id,
               action="submitted"):
    return run_action(tmp_path, ws, "pull_request_review",
                      review_payload(action, number=7, head=head, base=base, reviewer=reviewer,
                                     review_id=review_id),
                      github, sha=merge)


# --- done when: fail_on: never --------------------------------------------------------------

def test_a_pull_request_adding_two_leaks_and_fail_on_never_fails_and_the_comment_names_it(
        tmp_path, github):
    config = CONFIG + "fail_on: never\n"
    ws, base, head, merge = open_pr(tmp_path, github, leaks(0, 1),
                                    {".eval-firewall.yml": config})
    run = run_action(tmp_path, ws, "pull_request",
                     pr_payload("opened", number=7, head=head, base=base), github, sha=merge)
    assert run.code == 1, run.stderr
    check = last_check(github)
    assert check["conclusion"] == "failure" and check["head_sha"] == head
    line = line_of(config, "fail_on: never")
    body = comment_of(github)
    top = body.split("<details>")[0]                   # listed at the top of the comment
    assert "This pull request relaxes the gate" in top
    assert f"fail\\_on: error → never, [.eval\\-firewall.yml:{line}]" in top
    assert "pending approval" in top
    assert "This pull request relaxes the gate" in check["output"]["summary"]
    report = report_of(ws, run)
    assert report["fail_on"] == "error"                       # the base's, not applied
    rules = sorted(f["rule"] for f in report["findings"] if f["new"])
    assert rules == ["exact-duplicate", "exact-duplicate", "policy-change"]
    [change] = report["policy"]
    assert (change["key"], change["status"], change["line"]) == ("fail_on", "pending", line)


@pytest.mark.parametrize("edit", [
    "severity: {exact-duplicate: 'off', near-duplicate: 'off'}\n",
    "fail_on_existing: false\ninvalid_rows: notice\nlimits: {max_row_bytes: 1PiB}\n",
], ids=["severity-off", "more-keys"])
def test_the_issues_hostile_configs_fail_and_the_leaks_are_still_found(tmp_path, github, edit):
    config = CONFIG.replace("  overlap:\n", "  overlap:\n    enabled: false\n") \
        if "severity" in edit else CONFIG
    ws, base, head, merge = open_pr(tmp_path, github, leaks(0, 1),
                                    {".eval-firewall.yml": config + edit})
    run = run_action(tmp_path, ws, "pull_request",
                     pr_payload("opened", number=7, head=head, base=base), github, sha=merge)
    assert run.code == 1, run.stderr
    report = report_of(ws, run)
    assert sum(f["rule"] == "exact-duplicate" for f in report["findings"]) == 2
    assert all(c["status"] == "pending" for c in report["policy"])
    assert sum(f["rule"] == "policy-change" for f in report["findings"]) == len(report["policy"])


def test_a_pending_loosening_fails_even_when_the_data_is_clean(tmp_path, github):
    ws, base, head, merge = open_pr(tmp_path, github, EVAL_ROWS,
                                    {".eval-firewall.yml": CONFIG + "fail_on: never\n"})
    run = run_action(tmp_path, ws, "pull_request",
                     pr_payload("opened", number=7, head=head, base=base), github, sha=merge)
    assert run.code == 1 and last_check(github)["conclusion"] == "failure"
    [finding] = report_of(ws, run)["findings"]
    assert finding["rule"] == "policy-change"


def test_a_tightening_applies_at_once_and_is_listed(tmp_path, github):
    config = CONFIG + "severity: {stale-waiver: error}\n"
    ws, base, head, merge = open_pr(tmp_path, github, EVAL_ROWS, {".eval-firewall.yml": config})
    run = run_action(tmp_path, ws, "pull_request",
                     pr_payload("opened", number=7, head=head, base=base), github, sha=merge)
    assert run.code == 0, run.stderr
    [change] = report_of(ws, run)["policy"]
    assert (change["key"], change["direction"], change["status"]) == (
        "severity.stale-waiver", "tighten", "applied")


# --- done when: waiving its own findings, approval, stale approval ----------------------------

def waive_both(ws: Path, by: str = "alice") -> str:
    """The waiver file a contributor writes from their own JSON report's fingerprints."""
    out = ws / "own.json"
    done = CliRunner().invoke(main, ["audit", "--config", str(ws / ".eval-firewall.yml"),
                                     "--format", "json", "-o", str(out), "--no-cache", "-q"])
    assert done.exit_code == 1, done.output
    fps = [f["fingerprint"] for f in json.loads(out.read_text("utf-8"))["findings"]
           if f["rule"] == "exact-duplicate"]
    out.unlink()
    assert len(fps) == 2
    return "".join(entry_text(fp, "known", by) for fp in fps)


def self_waived_pr(tmp_path, github):
    ws, base = repo_with(tmp_path / "ws")
    git(ws, "checkout", "-q", "-b", "pr")
    write_jsonl(ws / EVAL, leaks(0, 1))
    head = commit_pr(ws, leaks(0, 1), {WAIVERS_FILE: waive_both(ws)})
    github.add_pull(REPO, 7, head, base, author=AUTHOR)
    github.set_commit_author(head, AUTHOR)
    return ws, base, head, merge_checkout(ws, base, head)


def test_a_pull_request_waiving_its_own_findings_fails_until_another_user_approves(
        tmp_path, github):
    ws, base, head, merge = self_waived_pr(tmp_path, github)
    run = run_action(tmp_path, ws, "pull_request",
                     pr_payload("opened", number=7, head=head, base=base), github, sha=merge)
    assert run.code == 1 and last_check(github)["conclusion"] == "failure"
    report = report_of(ws, run)
    assert [f["waived"] for f in report["findings"] if f["rule"] == "exact-duplicate"] == \
        [None, None]
    assert [c["status"] for c in report["policy"]] == ["pending", "pending"]
    assert "waivers\\[" in comment_of(github).split("<details>")[0]

    # GitHub refuses the author's own approval; a comment is no approval.
    from github_server import ApiError
    with pytest.raises(ApiError):
        github.review(REPO, 7, AUTHOR, "APPROVE")
    comment = github.review(REPO, 7, "maintainer", "COMMENT", body="looks fine")
    run = review_run(tmp_path, ws, github, head=head, base=base, merge=merge,
                     reviewer="maintainer", review_id=comment["id"])
    assert run.code == 1 and last_check(github)["conclusion"] == "failure"

    approval = github.review(REPO, 7, "maintainer", "APPROVE")
    run = review_run(tmp_path, ws, github, head=head, base=base, merge=merge,
                     reviewer="maintainer", review_id=approval["id"])
    assert run.code == 0, run.stderr
    check = last_check(github)
    assert (check["conclusion"], check["head_sha"]) == ("neutral", head)
    report = report_of(ws, run)
    waived = [f["waived"] for f in report["findings"] if f["rule"] == "exact-duplicate"]
    assert [w["reviewer"] for w in waived] == ["maintainer", "maintainer"]
    assert [w["approved_by"] for w in waived] == ["alice", "alice"]    # informational
    assert [(c["status"], c["reviewer"]) for c in report["policy"]] == \
        [("approved", "maintainer")] * 2
    body = comment_of(github)
    assert "approved by maintainer" in body and "— pending approval" not in body

    # The approval is dismissed: the pull_request_review (dismissed) run fails again.
    github.dismiss(REPO, approval["id"])
    run = review_run(tmp_path, ws, github, head=head, base=base, merge=merge,
                     reviewer="maintainer", review_id=approval["id"], action="dismissed")
    assert run.code == 1 and last_check(github)["conclusion"] == "failure"


def test_the_head_commits_author_cannot_approve_it(tmp_path, github):
    ws, base, head, merge = self_waived_pr(tmp_path, github)
    github.set_commit_author(head, "pusher")      # another account pushed the head commit
    approval = github.review(REPO, 7, "pusher", "APPROVE")
    run = review_run(tmp_path, ws, github, head=head, base=base, merge=merge,
                     reviewer="pusher", review_id=approval["id"])
    assert run.code == 1
    assert "no APPROVED review of the head commit" in comment_of(github)


def test_an_approval_of_an_older_commit_does_not_count(tmp_path, github):
    ws, base, head, merge = self_waived_pr(tmp_path, github)
    approval = github.review(REPO, 7, "maintainer", "APPROVE")
    run = review_run(tmp_path, ws, github, head=head, base=base, merge=merge,
                     reviewer="maintainer", review_id=approval["id"])
    assert run.code == 0, run.stderr
    # A new push after the approval: the approval is of an older commit now.
    head2 = commit_pr(ws, leaks(0, 1, 2), {}, "one more row")
    github.push_pull(REPO, 7, head2)
    github.set_commit_author(head2, AUTHOR)
    merge2 = merge_checkout(ws, base, head2)
    run = run_action(tmp_path, ws, "pull_request",
                     pr_payload("synchronize", number=7, head=head2, base=base, before=head),
                     github, sha=merge2)
    assert run.code == 1
    assert all(c["status"] == "pending" for c in report_of(ws, run)["policy"])
    # A review event for the old commit (delivered late) posts nothing over the new verdict.
    posted = len(github.state.check_runs)
    late = review_run(tmp_path, ws, github, head=head, base=base, merge=merge,
                      reviewer="maintainer", review_id=approval["id"])
    assert late.code == 0 and "no longer the head" in late.stderr
    assert len(github.state.check_runs) == posted
    assert last_check(github)["conclusion"] == "failure"


def test_a_forged_review_payload_approves_nothing(tmp_path, github):
    """The payload says "approved" by a maintainer; the API has no such review."""
    ws, base, head, merge = self_waived_pr(tmp_path, github)
    run = review_run(tmp_path, ws, github, head=head, base=base, merge=merge,
                     reviewer="maintainer", review_id=424242)
    assert run.code == 1 and last_check(github)["conclusion"] == "failure"


# --- CODEOWNERS from the base ---------------------------------------------------------------

def test_a_codeowner_of_the_waiver_file_must_approve(tmp_path, github):
    owners = {".github/CODEOWNERS": f"/{WAIVERS_FILE} @alice\n"}
    ws, base = repo_with(tmp_path / "ws", owners)
    git(ws, "checkout", "-q", "-b", "pr")
    write_jsonl(ws / EVAL, leaks(0, 1))
    # The pull request also makes itself the owner: CODEOWNERS is read from the base.
    head = commit_pr(ws, leaks(0, 1), {WAIVERS_FILE: waive_both(ws),
                                       ".github/CODEOWNERS": f"* @{AUTHOR} @bob\n"})
    github.add_pull(REPO, 7, head, base, author=AUTHOR)
    github.set_commit_author(head, AUTHOR)
    merge = merge_checkout(ws, base, head)
    bob = github.review(REPO, 7, "bob", "APPROVE")
    run = review_run(tmp_path, ws, github, head=head, base=base, merge=merge, reviewer="bob",
                     review_id=bob["id"])
    assert run.code == 1
    messages = [f["message"] for f in report_of(ws, run)["findings"]
                if f["rule"] == "policy-change"]
    assert len(messages) == 2 and all(
        f"requires an approval by an owner of {WAIVERS_FILE}: @alice" in m for m in messages)
    alice = github.review(REPO, 7, "alice", "APPROVE")
    run = review_run(tmp_path, ws, github, head=head, base=base, merge=merge, reviewer="alice",
                     review_id=alice["id"])
    assert run.code == 0, run.stderr
    assert {c["reviewer"] for c in report_of(ws, run)["policy"]} == {"alice"}


def test_a_team_owner_needs_a_token_that_reads_membership(tmp_path, github):
    owners = {"CODEOWNERS": f"/{WAIVERS_FILE} @octo-org/ml-leads\n"}
    github.add_team("octo-org", "ml-leads", ["dana"])
    ws, base = repo_with(tmp_path / "ws", owners)
    git(ws, "checkout", "-q", "-b", "pr")
    write_jsonl(ws / EVAL, leaks(0, 1))
    head = commit_pr(ws, leaks(0, 1), {WAIVERS_FILE: waive_both(ws)})
    github.add_pull(REPO, 7, head, base, author=AUTHOR)
    github.set_commit_author(head, AUTHOR)
    merge = merge_checkout(ws, base, head)
    dana = github.review(REPO, 7, "dana", "APPROVE")
    # GITHUB_TOKEN (an installation token) may not read team membership: pending, and why.
    run = review_run(tmp_path, ws, github, head=head, base=base, merge=merge, reviewer="dana",
                     review_id=dana["id"])
    assert run.code == 1
    assert "cannot read team membership" in comment_of(github)
    # A token that can read it (members: read): dana is in the team.
    github.add_token("ghp_members_read_token_0123456789abcdefgh", "ci-app-user")
    run = run_action(
        tmp_path, ws, "pull_request_review",
        review_payload("submitted", number=7, head=head, base=base, reviewer="dana",
                       review_id=dana["id"]),
        github, sha=merge, token="ghp_members_read_token_0123456789abcdefgh")
    assert run.code == 0, run.stderr


# --- new policy, pushes, trusted inputs, forks ----------------------------------------------

def test_with_no_config_at_the_base_the_heads_config_applies_as_new_policy(tmp_path, github):
    ws, base, head, merge = open_pr(tmp_path, github, EVAL_ROWS,
                                    {".eval-firewall.yml": CONFIG + "fail_on: warning\n"},
                                    base_config=None)
    run = run_action(tmp_path, ws, "pull_request",
                     pr_payload("opened", number=7, head=head, base=base), github, sha=merge,
                     comment="always")
    assert run.code == 0, run.stderr
    report = report_of(ws, run)
    assert report["new_policy"] is True and report["fail_on"] == "warning"
    assert "New policy" in comment_of(github).split("<details>")[0]


def test_a_push_uses_the_branchs_own_config(tmp_path, github):
    ws, base = repo_with(tmp_path / "ws")
    write_jsonl(ws / EVAL, leaks(0))
    (ws / ".eval-firewall.yml").write_text(CONFIG + "fail_on: never\n", "utf-8")
    after = git_commit(ws, "merged after approval")
    run = run_action(tmp_path, ws, "push", push_payload(before=base, after=after), github,
                     sha=after)
    assert run.code == 0, run.stderr
    report = report_of(ws, run)
    assert report["fail_on"] == "never"
    assert [(c["key"], c["status"]) for c in report["policy"]] == [("fail_on", "trusted")]


def test_max_limits_caps_the_base_and_a_raise_up_to_it_is_pending(tmp_path, github):
    base_config = CONFIG + "limits: {max_row_bytes: 1MiB}\n"
    ws, base, head, merge = open_pr(
        tmp_path, github, EVAL_ROWS,
        {".eval-firewall.yml": CONFIG + "limits: {max_row_bytes: 1PiB}\n"},
        base_config=base_config)
    run = run_action(tmp_path, ws, "pull_request",
                     pr_payload("opened", number=7, head=head, base=base), github, sha=merge,
                     max_limits="{max_row_bytes: 2MiB}")
    assert run.code == 1
    [change] = report_of(ws, run)["policy"]
    assert (change["key"], change["status"]) == ("limits.max_row_bytes", "pending")
    # approved: the raise applies up to the ceiling only
    approval = github.review(REPO, 7, "maintainer", "APPROVE")
    run = run_action(tmp_path, ws, "pull_request_review",
                     review_payload("submitted", number=7, head=head, base=base,
                                    reviewer="maintainer", review_id=approval["id"]),
                     github, sha=merge, max_limits="{max_row_bytes: 2MiB}")
    assert run.code == 0, run.stderr
    assert "limits.max_row_bytes 1.0PiB is capped at 2.0MiB (max-limits)" in run.stdout
    # a bad ceiling is a one-line error naming the input
    bad = run_action(tmp_path, ws, "pull_request",
                     pr_payload("opened", number=7, head=head, base=base), github, sha=merge,
                     max_limits="{max_row_bytes: lots}")
    assert bad.code == 2 and "max-limits" in bad.stderr and "max_row_bytes" in bad.stderr


def test_a_trusted_policy_file_from_the_base_wins_over_both_configs(tmp_path, github):
    policy = ".github/eval-firewall-policy.yml"
    ws, base, head, merge = open_pr(
        tmp_path, github, leaks(0),
        {".eval-firewall.yml": CONFIG + "severity: {exact-duplicate: 'off'}\n",
         # the pull request edits the policy file too: it is read from the base
         policy: "severity: {exact-duplicate: 'off'}\n"},
        base_files={policy: "severity: {exact-duplicate: error}\nfail_on: warning\n"})
    run = run_action(tmp_path, ws, "pull_request",
                     pr_payload("opened", number=7, head=head, base=base), github, sha=merge,
                     policy=policy)
    assert run.code == 1, run.stderr
    report = report_of(ws, run)
    assert report["fail_on"] == "warning"
    assert report["policy"] == []          # the overridden key cannot change at all
    assert any(f["rule"] == "exact-duplicate" for f in report["findings"])
    missing = run_action(tmp_path, ws, "pull_request",
                         pr_payload("opened", number=7, head=head, base=base), github,
                         sha=merge, policy=".github/none.yml")
    assert missing.code == 2 and "the policy file does not exist" in missing.stderr


def test_a_forks_review_run_posts_nothing(tmp_path, github):
    ws, base, head, merge = self_waived_pr(tmp_path, github)
    payload = review_payload("submitted", number=7, head=head, base=base, reviewer="maintainer",
                             review_id=1, head_repo="contributor/datasets")
    github.state.read_only = True              # a fork's token
    run = run_action(tmp_path, ws, "pull_request_review", payload, github, sha=merge)
    assert run.code == 1
    assert not github.comments_on(REPO, 7) and not github.state.check_runs
    assert "pull request from a fork" in run.stderr


# --- locally: --base and --trust-head-policy -------------------------------------------------

def test_local_base_shows_the_same_policy_diff_and_trust_head_policy_applies_it(tmp_path):
    ws, base = repo_with(tmp_path / "ws")
    config = CONFIG + "fail_on: never\n"
    commit_pr(ws, leaks(0), {".eval-firewall.yml": config})
    args = ["audit", "--config", str(ws / ".eval-firewall.yml"), "--base", "main", "--no-cache",
            "-q", "--format", "markdown"]
    done = CliRunner().invoke(main, args)
    assert done.exit_code == 1, done.output
    line = line_of(config, "fail_on: never")
    assert f"fail\\_on: error → never, .eval\\-firewall.yml:{line} — pending approval" in \
        done.output
    text = CliRunner().invoke(main, [*args[:-1], "text"])
    assert text.exit_code == 1
    assert (f"Gate policy relaxed: fail_on error → never, .eval-firewall.yml:{line} (pending "
            "approval: not applied)") in text.output
    trusted = CliRunner().invoke(main, [*args, "--trust-head-policy"])
    assert trusted.exit_code == 0, trusted.output
    assert "— trusted" in trusted.output and "— pending approval" not in trusted.output


# --- datasets removed or moved ----------------------------------------------------------------

NO_TRAIN = CONFIG.replace(CONFIG[CONFIG.index("  - name: train"):CONFIG.index("  - name: eval")],
                          "")


def test_a_dataset_removed_from_the_config_is_still_audited_until_approved(tmp_path, github):
    assert "name: train" not in NO_TRAIN
    ws, base, head, merge = open_pr(tmp_path, github, leaks(0, 1),
                                    {".eval-firewall.yml": NO_TRAIN})
    run = run_action(tmp_path, ws, "pull_request",
                     pr_payload("opened", number=7, head=head, base=base), github, sha=merge)
    assert run.code == 1, run.stderr
    report = report_of(ws, run)
    assert [(c["key"], c["after"], c["status"]) for c in report["policy"]] == [
        ("datasets[train]", "removed", "pending")]
    assert sum(f["rule"] == "exact-duplicate" for f in report["findings"]) == 2


def test_a_dataset_removed_with_its_files_fails_on_the_pending_removal(tmp_path, github):
    ws, base = repo_with(tmp_path / "ws")
    git(ws, "checkout", "-q", "-b", "pr")
    (ws / TRAIN).unlink()
    head = commit_pr(ws, leaks(0, 1), {".eval-firewall.yml": NO_TRAIN})
    github.add_pull(REPO, 7, head, base, author=AUTHOR)
    merge = merge_checkout(ws, base, head)
    run = run_action(tmp_path, ws, "pull_request",
                     pr_payload("opened", number=7, head=head, base=base), github, sha=merge)
    assert run.code == 1, run.stderr
    report = report_of(ws, run)
    assert [f["rule"] for f in report["findings"]] == ["policy-change"]
    assert last_check(github)["conclusion"] == "failure"


def test_moving_an_eval_dataset_to_train_is_pending(tmp_path, github):
    base_config = CONFIG.replace("audits:", "  - name: more-eval\n    role: eval\n"
                                 "    paths: [\"data/more/*.jsonl\"]\n    text: [question]\n"
                                 "audits:")
    config = base_config.replace("    role: eval\n    paths: [\"data/more",
                                 "    role: train\n    paths: [\"data/more")
    ws, base, head, merge = open_pr(
        tmp_path, github, EVAL_ROWS, {".eval-firewall.yml": config},
        base_files={"data/more/more.jsonl": json.dumps(TRAIN_ROWS[5]) + "\n"},
        base_config=base_config)
    run = run_action(tmp_path, ws, "pull_request",
                     pr_payload("opened", number=7, head=head, base=base), github, sha=merge)
    assert run.code == 1, run.stderr
    report = report_of(ws, run)
    assert [(c["key"], c["before"], c["after"], c["status"]) for c in report["policy"]] == [
        ("datasets[more-eval].role", "eval", "train", "pending")]
    # still an eval set: its row, a copy of a train row, is found
    assert {d["name"]: d["role"] for d in report["datasets"]}["more-eval"] == "eval"


def test_a_hostile_glob_against_the_bases_config_is_a_pending_change_never_expanded(
        tmp_path, github):
    secret = "eC1hY2Nlc3MtdG9rZW46Z2hzX3NlY3JldDAxMjM0NTY3ODk="
    config = CONFIG.replace('paths: ["data/eval/*.jsonl"]', 'paths: [".*/config"]')
    ws, base, head, merge = open_pr(tmp_path, github, EVAL_ROWS, {".eval-firewall.yml": config})
    git(ws, "config", "http.https://github.com/.extraheader", f"AUTHORIZATION: basic {secret}")
    run = run_action(tmp_path, ws, "pull_request",
                     pr_payload("opened", number=7, head=head, base=base), github, sha=merge)
    assert run.code == 1, run.stderr
    [change] = report_of(ws, run)["policy"]
    assert (change["key"], change["status"]) == ("datasets[eval].paths", "pending")
    everything = json.dumps([github.state.log, list(github.state.comments.values()),
                             list(github.state.check_runs.values())]) + run.stdout + run.stderr
    assert secret not in everything


def test_new_policy_cannot_raise_a_limit_above_the_default(tmp_path, github):
    config = CONFIG + "limits: {max_row_bytes: 1PiB, max_json_depth: 50}\n"
    ws, base, head, merge = open_pr(tmp_path, github, EVAL_ROWS, {".eval-firewall.yml": config},
                                    base_config=None)
    run = run_action(tmp_path, ws, "pull_request",
                     pr_payload("opened", number=7, head=head, base=base), github, sha=merge)
    assert run.code == 0, run.stderr
    assert ("::warning::limits.max_row_bytes 1.0PiB is capped at 16.0MiB (the default: no "
            "config at the base sets a higher one)") in run.stdout
    assert "max_json_depth" not in run.stdout          # a lower limit applies as written


def test_reviews_the_token_cannot_read_leave_the_changes_pending_and_say_why(tmp_path, github):
    ws, base, head, merge = self_waived_pr(tmp_path, github)
    github.review(REPO, 7, "maintainer", "APPROVE")
    github.fail("GET", r"/pulls/7/reviews$", kind="403", times=100)
    run = run_action(tmp_path, ws, "pull_request",
                     pr_payload("opened", number=7, head=head, base=base), github, sha=merge)
    assert run.code == 1, run.stderr
    assert "::warning::could not read the pull request's reviews" in run.stdout
    messages = [f["message"] for f in report_of(ws, run)["findings"]
                if f["rule"] == "policy-change"]
    assert len(messages) == 2 and all("the reviews could not be read" in m for m in messages)


# --- remote locations: index.location ---------------------------------------------------------

def test_a_pull_request_naming_an_index_location_fails_and_the_run_keeps_none(tmp_path, github):
    """`index.location` is policy: a pull request that sets it is listed at the top of the
    comment, pending, and the run does not use it (the base names none)."""
    config = CONFIG + "index:\n  location: s3://attacker-bucket/index\n"
    ws, base, head, merge = open_pr(tmp_path, github, EVAL_ROWS, {".eval-firewall.yml": config})
    run = run_action(tmp_path, ws, "pull_request",
                     pr_payload("opened", number=7, head=head, base=base), github, sha=merge)
    assert run.code == 1 and last_check(github)["conclusion"] == "failure"
    line = line_of(config, "location:")
    top = comment_of(github).split("<details>")[0]
    assert (f"index.location: unset → s3:\u200b//attacker\\-bucket/index, "
            f"[.eval\\-firewall.yml:{line}]") in top and "pending approval" in top
    report = report_of(ws, run)
    assert [(c["key"], c["before"], c["after"], c["status"]) for c in report["policy"]] == [
        ("index.location", "unset", "s3://attacker-bucket/index", "pending")]
    assert [f["rule"] for f in report["findings"]] == ["policy-change"]
