"""Reading approvals over real HTTP (eval_firewall.github.api and .approval against the local
GitHub server): reviews across pages, pending reviews, dismissals, commit authors, teams."""

from __future__ import annotations

import pytest

from eval_firewall.github import api
from eval_firewall.github.approval import read_approvals
from github_server import ApiError, GitHubServer

REPO = "octo-org/datasets"
APP, PAT = "ghs_installation_token_xxxxxxxxxxxxxxxxxx", "ghp_personal_token_xxxxxxxxxxxxxxxxxxx"
HEAD, OLD = "a" * 40, "c" * 40
FILES = {".eval-firewall-waivers.yml": ".eval-firewall-waivers.yml"}


@pytest.fixture
def server():
    s = GitHubServer().start()
    s.add_repo(REPO)
    s.add_token(APP, "github-actions[bot]", app=True)
    s.add_token(PAT, "octocat")
    s.add_pull(REPO, 5, HEAD, "b" * 40, author="contributor")
    s.set_commit_author(HEAD, "contributor")
    yield s
    s.stop()


def client(server, token=APP) -> api.RestGitHub:
    return api.RestGitHub(token, server.api_url, REPO)


def test_reviews_are_read_across_pages_oldest_first(server):
    for i in range(130):
        server.review(REPO, 5, f"user{i}", "COMMENT", body="hm")
    server.review(REPO, 5, "maintainer", "APPROVE")
    gh = client(server)
    reviews = gh.reviews(5)
    assert len(reviews) == 131 and reviews[-1].login == "maintainer"
    assert (reviews[-1].state, reviews[-1].commit_id) == ("APPROVED", HEAD)
    assert len(server.requests("GET", r"/pulls/5/reviews$")) == 2      # pages of 100
    assert gh.pull_author(5) == "contributor" and gh.commit_author(HEAD) == "contributor"
    assert gh.commit_author(OLD) is None          # an e-mail that is no account's


def test_github_refuses_self_approval_and_hides_others_pending_reviews(server):
    with pytest.raises(ApiError) as err:
        server.review(REPO, 5, "contributor", "APPROVE")
    assert err.value.status == 422
    server.review(REPO, 5, "maintainer", None)           # pending: only its author sees it
    assert client(server).reviews(5) == []


def test_read_approvals_counts_the_head_commit_only_and_not_a_dismissed_review(server):
    gh = client(server)
    server.review(REPO, 5, "maintainer", "APPROVE", commit_id=OLD)
    approvals = read_approvals(gh, 5, HEAD, FILES, None)
    assert approvals.by_file == {} and "no APPROVED review" in approvals.why_not[
        ".eval-firewall-waivers.yml"]
    review = server.review(REPO, 5, "maintainer", "APPROVE")
    assert read_approvals(gh, 5, HEAD, FILES, None).by_file == {
        ".eval-firewall-waivers.yml": "maintainer"}
    server.dismiss(REPO, review["id"])
    assert read_approvals(gh, 5, HEAD, FILES, None).by_file == {}
    with pytest.raises(ApiError):                         # a dismissed review: not again
        server.dismiss(REPO, review["id"])
    # an audit of a commit that is no longer the head: nothing counts
    server.review(REPO, 5, "maintainer", "APPROVE")
    stale = read_approvals(gh, 5, OLD, FILES, None)
    assert stale.by_file == {} and "head commit only" in stale.why_not[
        ".eval-firewall-waivers.yml"]


def test_team_membership_needs_a_token_that_may_read_it(server):
    server.add_team("octo-org", "ml-leads", ["dana"])
    assert client(server).team_member("octo-org", "ml-leads", "dana") is None   # GITHUB_TOKEN
    pat = client(server, PAT)
    assert pat.team_member("octo-org", "ml-leads", "dana") is True
    assert pat.team_member("octo-org", "ml-leads", "bob") is False
    assert pat.team_member("octo-org", "no-such-team", "dana") is None
    codeowners = "/.eval-firewall-waivers.yml @octo-org/ml-leads\n"
    server.review(REPO, 5, "dana", "APPROVE")
    assert read_approvals(pat, 5, HEAD, FILES, codeowners).by_file == {
        ".eval-firewall-waivers.yml": "dana"}
    assert read_approvals(client(server), 5, HEAD, FILES, codeowners).by_file == {}
