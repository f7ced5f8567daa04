"""The GitHub calls, in-process, against the local GitHub-compatible server over real HTTP."""

from __future__ import annotations

import pytest

from eval_firewall.errors import UserError
from eval_firewall.github import api
from eval_firewall.github.comment import marker, previous_findings
from github_server import GitHubServer

REPO = "octo-org/datasets"
APP, PAT = "ghs_installation_token_xxxxxxxxxxxxxxxxxx", "ghp_personal_token_xxxxxxxxxxxxxxxxxxx"
SHA = "a" * 40


@pytest.fixture
def server():
    s = GitHubServer().start()
    s.add_repo(REPO)
    s.add_token(APP, "github-actions[bot]", app=True)
    s.add_token(PAT, "octocat")
    s.add_pull(REPO, 5, SHA, "b" * 40)
    yield s
    s.stop()


def repo(server, token=APP):
    gh = api.client(token, server.api_url)
    return gh, api.get_repo(gh, REPO)


def ours(body: str) -> bool:
    return previous_findings(body, "eval-firewall") is not None


def test_identity_of_github_token_and_of_a_personal_token(server):
    assert api.my_login(repo(server, APP)[0]) == "github-actions[bot]"   # GET /user is 403
    assert api.my_login(repo(server, PAT)[0]) == "octocat"
    assert [r["status"] for r in server.requests("GET", "/user$")] == [403, 200]


def test_sticky_comment_found_by_marker_and_author_across_pages(server):
    mark = marker("eval-firewall", 1)
    for i in range(230):                         # three pages of 100
        server.add_comment(REPO, 5, f"{mark}\ncopied marker {i}", login="mallory")
    gh, r = repo(server, PAT)
    assert api.find_comment(r, 5, "octocat", ours) is None
    created = api.create_comment(r, 5, f"{mark}\nours")
    found = api.find_comment(r, 5, "octocat", ours)
    assert found is not None and found.id == created.id
    assert len(server.requests("GET", r"/issues/5/comments$")) == 6      # 2 x 3 pages
    api.update_comment(found, f"{mark}\nedited")
    assert server.state.comments[created.id]["body"].endswith("edited")
    # The other identity does not see it as its own.
    assert api.find_comment(repo(server, APP)[1], 5, "github-actions[bot]", ours) is None


def test_check_run_annotations_go_fifty_per_request(server):
    _, r = repo(server)
    notes = [{"path": "d.jsonl", "start_line": i, "end_line": i, "annotation_level": "failure",
              "message": f"row {i}"} for i in range(1, 122)]
    run = api.create_check_run(r, name="eval-firewall", head_sha=SHA, conclusion="failure",
                               title="t", summary="s", annotations=notes)
    stored = server.state.check_runs[run.id]
    assert stored["_batches"] == [50, 50, 21]
    assert [a["start_line"] for a in stored["_annotations"]] == list(range(1, 122))
    assert stored["output"]["annotations_count"] == 121


def test_github_limits_come_back_as_one_line_errors(server):
    _, r = repo(server)
    with pytest.raises(api.GitHubError, match="422.*Only 50 annotations"):
        with api.calling("create a check run", "checks: write"):
            r.create_check_run(name="x", head_sha=SHA, status="completed", conclusion="success",
                               output={"title": "t", "summary": "s", "annotations": [
                                   {"path": "p", "start_line": 1, "end_line": 1,
                                    "annotation_level": "notice", "message": "m"}] * 51})
    with pytest.raises(api.GitHubError, match="body is too long"):
        api.create_comment(r, 5, "x" * 65_537)
    with pytest.raises(api.GitHubError, match="state"):
        with api.calling("set a status", "statuses: write"):
            r.get_commit(SHA).create_status(state="passed", context="x")


def test_permission_and_credential_errors_name_what_to_fix(server):
    server.state.forbid_checks = True
    _, r = repo(server)
    with pytest.raises(api.Forbidden, match="checks: write"):
        api.create_check_run(r, name="x", head_sha=SHA, conclusion="success", title="t",
                             summary="s", annotations=[])
    with pytest.raises(api.Forbidden, match="pull-requests: read"):
        api.pull_head_sha(r, 99)                  # 404: not visible to this token
    _, bad = repo(server, "ghs_revoked")
    with pytest.raises(api.GitHubError, match="401") as info:
        api.create_comment(bad, 5, "x")
    assert "ghs_revoked" not in str(info.value)
    with pytest.raises(UserError, match="github-token"):
        api.client("", server.api_url)
