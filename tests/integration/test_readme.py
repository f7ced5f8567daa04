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


def test_readme_table_gives_each_audit_a_row_of_its_own_rules():
    """Every backticked name in the "What it catches" table is a rule id (one word or several),
    each row's names are rules of one audit (all of them, unless the row ends with "...") or
    rules no audit owns (the policy gate's), and every audit has its row."""
    from eval_firewall.audits import AUDITS, RULES

    text = README.read_text(encoding="utf-8")
    table = text[text.index("## What it catches"):text.index("## Quick start")]
    rows = [line for line in table.splitlines() if line.startswith("| [")]
    assert len(rows) >= len(AUDITS)
    owned = {r.id for audit in AUDITS for r in audit.rules}
    seen = []
    for row in rows:
        rules_cell = row.strip().strip("|").split("|")[2]
        named = re.findall(r"`([^`]+)`", rules_cell)
        assert named and set(named) <= set(RULES), (row, set(named) - set(RULES))
        owners = [a for a in AUDITS if set(named) <= {r.id for r in a.rules}]
        if not owners:
            assert not set(named) & owned, f"rules of several audits in one row: {row}"
            continue
        (audit,) = owners
        if "..." not in rules_cell:
            assert set(named) == {r.id for r in audit.rules}, f"{audit.name}: some rules missing"
        seen.append(audit.name)
    assert sorted(seen) == sorted(a.name for a in AUDITS)
