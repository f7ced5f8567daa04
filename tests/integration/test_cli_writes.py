"""Every command that writes a file refuses to write through a symbolic link a repository can
commit (issue #18, item 1): `audit --output`, `sample --output`, `perturb --output`, `init`
and `waive`. Each attack commits the link in a real git repository; the target outside keeps
its content and the command exits 2 with one line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cli_harness import invoke

from conftest import ID_DATASETS, git_init, gsm8k, write_jsonl

PRECIOUS = "do not overwrite\n"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "repo").mkdir()
    root = git_init(tmp_path / "repo")
    write_jsonl(root / "data/eval.jsonl", [{"id": f"g{i}", **r}
                                           for i, r in enumerate(gsm8k("test", 20))])
    write_jsonl(root / "data/train.jsonl", gsm8k("train", 20))
    (root / ".eval-firewall.yml").write_text(ID_DATASETS + "audits:\n  overlap: {semantic: "
                                             "{enabled: false}}\n", encoding="utf-8")
    outside = tmp_path / "outside.txt"
    outside.write_text(PRECIOUS, encoding="utf-8")
    return root


def refused(result, outside: Path) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output)
    [line] = [x for x in result.stderr.splitlines() if x.startswith("eval-firewall: error")]
    assert "symbolic link" in line, line
    assert outside.read_text(encoding="utf-8") == PRECIOUS
    return line


@pytest.mark.parametrize("command", [
    ["audit", "-q", "--format", "json", "--output", "{out}"],
    ["sample", "--dataset", "eval", "--n", "5", "--force", "--output", "{out}"],
    ["perturb", "--dataset", "eval", "--output", "{out}"],
], ids=["audit", "sample", "perturb"])
@pytest.mark.parametrize("how", ["file", "folder"])
def test_output_through_a_committed_link_is_refused(repo: Path, command: list[str], how: str):
    outside = repo.parent / "outside.txt"
    name = "out.jsonl" if command[0] == "perturb" else "out.csv" if command[0] == "sample" \
        else "out.json"
    if how == "file":                          # reports/out.json -> ../../outside.txt
        (repo / "reports").mkdir()
        os.symlink(outside, repo / "reports" / name)
    else:                                      # reports -> a folder outside
        folder = repo.parent / "elsewhere"
        folder.mkdir()
        outside = folder / name
        outside.write_text(PRECIOUS, encoding="utf-8")
        os.symlink(folder, repo / "reports")
    line = refused(invoke(repo, *[a.replace("{out}", f"reports/{name}") for a in command]),
                   outside)
    assert ("is a symbolic link" if how == "file" else "lies under a symbolic link (reports)") \
        in line


def test_init_does_not_write_through_a_dangling_link(repo: Path, tmp_path: Path):
    (repo / ".eval-firewall.yml").unlink()
    target = tmp_path / "created-by-init.yml"
    os.symlink(target, repo / ".eval-firewall.yml")          # dangling: exists() is False
    result = invoke(repo, "init", "--force")
    assert result.exit_code == 2, result.output
    assert "symbolic link" in result.stderr
    assert not target.exists()


def test_waive_does_not_append_through_a_link(repo: Path, tmp_path: Path):
    outside = tmp_path / "outside.txt"
    os.symlink(outside, repo / ".eval-firewall-waivers.yml")
    result = invoke(repo, "waive", "0123456789abcdef0123456789abcdef", "--reason", "ok",
                    "--by", "ana")
    assert result.exit_code == 2, result.output
    assert outside.read_text(encoding="utf-8") == PRECIOUS


def test_plain_outputs_are_still_written(repo: Path):
    result = invoke(repo, "audit", "-q", "--format", "json", "--output", "reports/new/out.json")
    assert result.exit_code in (0, 1), result.output
    assert (repo / "reports/new/out.json").read_text(encoding="utf-8").startswith("{")
