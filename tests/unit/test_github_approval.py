"""Who approves a policy change (eval_firewall.github.approval): the rules, on reviews as the
API lists them and CODEOWNERS as GitHub reads it."""

from __future__ import annotations

from eval_firewall.github.approval import (
    NO_REVIEW,
    TEAM_TOKEN_HINT,
    Review,
    approval_for,
    approvers,
    owners,
)

HEAD, OLD = "a" * 40, "b" * 40


def test_only_an_approval_of_the_head_commit_by_someone_else_counts():
    reviews = [Review("alice", "APPROVED", OLD),          # an older commit: stale
               Review("author", "APPROVED", HEAD),        # excluded: the author
               Review("committer", "APPROVED", HEAD),     # excluded: the head commit's author
               Review("bob", "COMMENTED", HEAD),
               Review(None, "APPROVED", HEAD),            # a deleted account
               Review("carol", "APPROVED", HEAD)]
    assert approvers(reviews, HEAD, {"author", "committer"}) == ["carol"]


def test_a_users_latest_verdict_counts_and_a_comment_does_not_change_it():
    approved_then_comment = [Review("bob", "APPROVED", HEAD), Review("bob", "COMMENTED", HEAD)]
    assert approvers(approved_then_comment, HEAD, set()) == ["bob"]
    for later in ("CHANGES_REQUESTED", "DISMISSED"):
        assert approvers([Review("bob", "APPROVED", HEAD), Review("bob", later, HEAD)],
                         HEAD, set()) == []
    # an approval after a change request counts; logins compare case-insensitively
    assert approvers([Review("Bob", "CHANGES_REQUESTED", HEAD), Review("bob", "APPROVED", HEAD)],
                     HEAD, {"author"}) == ["bob"]
    assert approvers([Review("Author", "APPROVED", HEAD)], HEAD, {"author"}) == []


CODEOWNERS = """\
# owners of the gate
*                         @everyone
/.eval-firewall.yml       @alice @octo-org/ml-leads
/.eval-firewall-waivers.yml  @alice
/data/                    ops@example.com
"""


def test_codeowners_last_matching_line_wins():
    assert owners(CODEOWNERS, ".eval-firewall.yml") == (["alice"], ["octo-org/ml-leads"])
    assert owners(CODEOWNERS, "README.md") == (["everyone"], [])
    assert owners(CODEOWNERS, "data/eval.jsonl") == ([], [])     # an e-mail owner only
    assert owners(None, ".eval-firewall.yml") == ([], [])


def test_an_owner_must_approve_when_codeowners_names_one():
    never = lambda org, slug, login: False     # noqa: E731
    assert approval_for("f", ["bob"], [], [], never) == ("bob", "")
    assert approval_for("f", [], [], [], never) == (None, NO_REVIEW)
    login, why = approval_for(".eval-firewall.yml", ["bob"], ["alice"], ["octo-org/ml-leads"],
                              never)
    assert login is None and "@alice, @octo-org/ml-leads" in why and TEAM_TOKEN_HINT not in why
    assert approval_for("f", ["bob", "alice"], ["alice"], [], never) == ("alice", "")


def test_a_team_owner_counts_when_membership_can_be_read_and_says_why_when_not():
    member = lambda org, slug, login: (org, slug, login) == ("octo-org", "ml-leads", "dana")  # noqa: E731
    assert approval_for("f", ["bob", "dana"], [], ["octo-org/ml-leads"], member) == ("dana", "")
    unknown = lambda org, slug, login: None    # noqa: E731  (GITHUB_TOKEN: 403)
    login, why = approval_for("f", ["dana"], [], ["octo-org/ml-leads"], unknown)
    assert login is None and why.endswith(TEAM_TOKEN_HINT)
