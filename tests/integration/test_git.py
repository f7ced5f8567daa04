"""The git wrapper: a missing base revision gets a hint that can work."""

from __future__ import annotations

import subprocess

import pytest

from conftest import git_commit, git_init
from eval_firewall.errors import UserError
from eval_firewall.incremental.git import Git


def history(path, commits: int):
    path.mkdir()
    git_init(path)
    for i in range(commits):
        (path / "data.txt").write_text(f"version {i}\n")
        git_commit(path, f"commit {i}")
    return path


def missing(top, rev: str) -> UserError:
    with pytest.raises(UserError) as err:
        Git(top).resolve(rev)
    assert f"revision '{rev}' is not in this clone" in str(err.value)
    return err.value


def test_a_relative_revision_is_never_suggested_as_a_fetch(tmp_path):
    top = history(tmp_path / "repo", 2)
    hint = missing(top, "HEAD~5").hint
    assert "git fetch origin HEAD~5" not in hint and "relative revision" in hint
    # The hint's own advice is sound: fetching a branch by name is a valid command.
    assert "git fetch origin main" in hint
    assert Git(top).resolve("HEAD~1") == subprocess.run(
        ["git", "rev-parse", "HEAD^"], cwd=top, capture_output=True, text=True).stdout.strip()


def test_a_named_revision_is_suggested_as_a_fetch(tmp_path):
    top = history(tmp_path / "repo", 1)
    assert missing(top, "feature").hint == "fetch it first, e.g. 'git fetch origin feature'"


def test_a_shallow_clone_is_told_to_fetch_more_history(tmp_path):
    source = history(tmp_path / "source", 3)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{source}", str(clone)],
                   check=True)
    hint = missing(clone, "HEAD~2").hint
    assert "shallow clone" in hint and "fetch-depth: 0" in hint and "--deepen" in hint
    # ... and following it works: after deepening, the revision resolves.
    subprocess.run(["git", "fetch", "-q", "--deepen=2"], cwd=clone, check=True)
    assert len(Git(clone).resolve("HEAD~2")) == 40
