"""Issue #8, attack 6: a comment that merely quotes our marker, even one written by the same bot
login (another workflow using GITHUB_TOKEN), must never be taken for the sticky comment and
overwritten. Ours is the comment whose body *starts* with the marker and whose author is the
token's identity."""

from __future__ import annotations

from action_harness import REPO, leaks, open_pr, run_action
from eval_firewall.github.comment import marker
from printed import assert_inert

BOT = "github-actions[bot]"


def test_a_comment_quoting_the_marker_is_never_overwritten(tmp_path, github):
    quoting = (f"Lint bot report. The eval-firewall comment below starts with\n\n"
               f"> {marker('eval-firewall', 2)}\n\nso please ignore it.")
    ws, _, _, merge, payload = open_pr(tmp_path, github, leaks(0, 1))
    other = github.add_comment(REPO, 7, quoting, login=BOT)          # same login
    spoof = github.add_comment(REPO, 7, marker("eval-firewall", 9) + "\nhi", login="mallory")

    (tmp_path / "one").mkdir()
    first = run_action(tmp_path / "one", ws, "pull_request", payload, github, sha=merge)
    assert first.code == 1, first.stderr
    assert_inert(first)
    assert "commented on #7" in first.stderr
    comments = {c["id"]: c for c in github.comments_on(REPO, 7)}
    assert len(comments) == 3                                        # a new one of ours
    assert comments[other["id"]]["body"] == quoting and comments[other["id"]]["_edits"] == 0
    assert comments[spoof["id"]]["_edits"] == 0
    (ours,) = [c for c in comments.values() if c["id"] not in (other["id"], spoof["id"])]
    assert ours["user"]["login"] == BOT
    assert ours["body"].startswith(marker("eval-firewall", 2))
    assert first.outputs["comment-url"] == ours["html_url"]
    assert github.requests("PATCH", r"/issues/comments/") == []

    # The next run finds its own comment (marker first, our login) and edits that one only.
    (tmp_path / "two").mkdir()
    second = run_action(tmp_path / "two", ws, "pull_request", payload, github, sha=merge)
    assert second.code == 1, second.stderr
    assert_inert(second)
    assert "updated the comment on #7" in second.stderr
    (patch,) = github.requests("PATCH", r"/issues/comments/")
    assert patch["path"].endswith(f"/issues/comments/{ours['id']}")
    after = {c["id"]: c for c in github.comments_on(REPO, 7)}
    assert len(after) == 3 and after[other["id"]]["body"] == quoting
    assert after[ours["id"]]["_edits"] == 1
