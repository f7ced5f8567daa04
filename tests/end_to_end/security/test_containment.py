"""Attacks on containment (issue #8, hole 1): a pull request's config pointing the audit at
files outside the dataset repository, or inside .git/, to get them posted.

Each test builds the attack in a real repository, runs the action as GitHub runs it against the
local GitHub server, and checks what the server received, what was printed and the exit code.
"""

from __future__ import annotations

import pytest

from action_harness import TOKEN, run_action
from attacks import SECRET, assert_refused, eval_paths, hostile_pr, sent, unescaped
from conftest import git


@pytest.mark.parametrize("paths, why", [
    ('[".git/config"]', "inside .git/"),
    ('["data/../.git/config"]', "inside .git/"),
    ('[".git/*"]', "inside .git/"),
    ('[".*/config"]', "inside .git/"),
])
def test_git_config_is_never_read(tmp_path, github, paths, why):
    """The checkout's token sits in .git/config (extraheader): reading it as CSV would post it
    in the comment and the check-run annotations."""
    ws, merge, payload = hostile_pr(
        tmp_path, github, config=eval_paths(paths, "\n    format: csv"))
    run = run_action(tmp_path, ws, "pull_request", payload, github, sha=merge)
    assert_refused(run, github, "datasets[1].paths", why, SECRET, "extraheader")


def test_symlink_into_git_dir_is_refused(tmp_path, github):
    ws, merge, payload = hostile_pr(tmp_path, github,
                                    links={"data/eval/config.jsonl": "../../.git/config"})
    run = run_action(tmp_path, ws, "pull_request", payload, github, sha=merge)
    assert_refused(run, github, "datasets[1].paths", "resolves inside .git/", SECRET,
                   "extraheader")


@pytest.mark.parametrize("paths, why", [
    ('["/proc/self/environ"]', "an absolute path is not allowed"),
    ('["../../../../../../../../proc/self/environ"]', "leaves the repository"),
])
def test_proc_self_environ_is_never_read(tmp_path, github, paths, why):
    """The environment holds INPUT_GITHUB-TOKEN; read as CSV it came back in the "column is
    missing (columns: ...)" error on the public check run."""
    ws, merge, payload = hostile_pr(
        tmp_path, github, config=eval_paths(paths, "\n    format: csv"))
    run = run_action(tmp_path, ws, "pull_request", payload, github, sha=merge)
    assert_refused(run, github, "datasets[1].paths", why, TOKEN, "INPUT_GITHUB-TOKEN")


def test_symlink_out_of_the_checkout_is_refused(tmp_path, github):
    ws, merge, payload = hostile_pr(tmp_path, github,
                                    links={"data/eval/env.jsonl": "/proc/self/environ"})
    run = run_action(tmp_path, ws, "pull_request", payload, github, sha=merge)
    assert_refused(run, github, "datasets[1].paths", "outside the repository", TOKEN,
                   "INPUT_GITHUB-TOKEN")


def test_card_outside_the_repository_is_refused(tmp_path, github):
    outside = tmp_path / "outside.md"
    outside.write_text(f"---\nlicense: {SECRET}\n---\n", encoding="utf-8")
    config = eval_paths('["data/eval/*.jsonl"]', "\n    card: data/eval/card.md")
    ws, merge, payload = hostile_pr(tmp_path, github, config=config,
                                    links={"data/eval/card.md": str(outside)})
    run = run_action(tmp_path, ws, "pull_request", payload, github, sha=merge)
    assert_refused(run, github, "datasets[1].card", "outside the repository", SECRET)


def test_a_header_that_is_not_column_names_is_not_quoted(tmp_path, github):
    """Defence in depth: a file whose "header" is long or unprintable (an environment dump,
    a key) is described by its number of columns, never quoted."""
    leaked = f"INPUT_GITHUB-TOKEN={TOKEN}\0HOME=/github/home"
    config = eval_paths('["data/eval/*.csv"]')
    ws, merge, payload = hostile_pr(tmp_path, github, config=config,
                                    files={"data/eval/eval.csv": f"{leaked},x\nq,a\n"})
    run = run_action(tmp_path, ws, "pull_request", payload, github, sha=merge)
    assert run.code == 2, run.stderr
    (error,) = [line for line in run.stderr.splitlines() if "error" in line]
    assert "data/eval/eval.csv:1: field 'question': column is missing from the header " \
           "(2 columns)" in error
    (check,) = github.state.check_runs.values()
    assert check["conclusion"] == "failure"
    assert "(2 columns)" in unescaped(check["output"]["summary"])
    assert TOKEN not in sent(github) and "INPUT_GITHUB-TOKEN" not in sent(github)


def test_short_printable_columns_are_still_named(tmp_path):
    """The same message keeps naming the columns of an ordinary file."""
    from eval_firewall.config import load_config
    from eval_firewall.datasets import load_dataset
    from eval_firewall.errors import UserError

    (tmp_path / "data").mkdir()
    (tmp_path / "data/e.csv").write_text("prompt,answer\nq,a\n", encoding="utf-8")
    (tmp_path / ".eval-firewall.yml").write_text(
        "datasets:\n  - {name: e, role: eval, paths: [data/e.csv], text: question}\n",
        encoding="utf-8")
    config = load_config(tmp_path / ".eval-firewall.yml")
    with pytest.raises(UserError) as info:
        load_dataset(config, config.datasets[0])
    assert str(info.value) == ("data/e.csv:1: field 'question': column is missing from the "
                               "header (columns: prompt, answer)")


def test_paths_inside_the_work_tree_but_above_the_config_are_allowed(tmp_path):
    """A config in a sub-folder may name data elsewhere in the same repository."""
    from eval_firewall.config import load_config, resolve_paths

    git(tmp_path, "init", "-q")
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared/e.jsonl").write_text('{"question": "q"}\n', encoding="utf-8")
    (tmp_path / "project").mkdir()
    (tmp_path / "project/.eval-firewall.yml").write_text(
        "datasets:\n  - {name: e, role: eval, paths: ['../shared/*.jsonl'], text: question}\n",
        encoding="utf-8")
    config = load_config(tmp_path / "project/.eval-firewall.yml")
    (found,) = resolve_paths(config, config.datasets[0])
    assert found.resolve() == (tmp_path / "shared/e.jsonl").resolve()
