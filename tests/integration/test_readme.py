"""README.md stays short and true: it starts with the two commands CI and users run, and every link
into the docs site lands on a page. The reference material it used to hold, and the tests that
checked it against the code, live with the docs (test_docs.py)."""

from __future__ import annotations

import re

from conftest import ROOT

README = ROOT / "README.md"


def fenced_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


def test_readme_starts_with_the_example_and_test_commands_and_ci_runs_the_second():
    text = README.read_text(encoding="utf-8")
    first, second = (block.strip() for block in fenced_blocks(text)[:2])
    assert text.index(first) < text.index("## ")        # both come before any section
    assert "eval-firewall audit" in first and "examples/gsm8k" in first
    assert "pytest" in second
    ci = (ROOT / ".ci" / "run").read_text()
    assert second in ci


def test_readme_is_short():
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 300


def test_readme_links_land_on_docs_pages_and_repository_files():
    text = README.read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    local = [link.split("#")[0] for link in links if not re.match(r"[a-z]+:", link)
             and not link.startswith("#") and link != "…"]
    assert any(link.startswith("docs/") for link in local)
    missing = [link for link in local if link and not (ROOT / link).exists()]
    assert not missing, missing
    # Every docs page in the nav is reachable from the README's list of docs.
    assert "docs/reference/configuration.md" in local and "docs/reference/cli.md" in local


def test_readme_table_names_only_real_rules_and_every_audit():
    from eval_firewall.audits import AUDITS, RULES

    text = README.read_text(encoding="utf-8")
    table = text[text.index("## What it catches"):text.index("## Quick start")]
    named = set(re.findall(r"`([a-z]+(?:-[a-z]+)+)`", table))
    assert named and named <= set(RULES), named - set(RULES)
    for audit in AUDITS:
        assert any(f"`{r.id}`" in table for r in audit.rules), audit.name
