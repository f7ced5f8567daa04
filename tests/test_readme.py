"""README.md stays true: the command reference is current and CI runs the README's test command."""

from __future__ import annotations

import re
import subprocess
import sys

from conftest import ROOT


def fenced_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


def test_command_reference_matches_help():
    done = subprocess.run([sys.executable, "-m", "cogapp", "--check", "README.md"], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, "README is stale: run `cog -r README.md`\n" + done.stdout + done.stderr


def test_readme_starts_with_the_example_and_test_commands_and_ci_runs_the_second():
    text = (ROOT / "README.md").read_text()
    first, second = (block.strip() for block in fenced_blocks(text)[:2])
    assert text.index(first) < text.index("## ")        # both come before any section
    assert "eval-firewall audit" in first and "examples/gsm8k" in first
    assert "pytest" in second
    ci = (ROOT / ".ci" / "run").read_text()
    assert second in ci


def test_every_config_key_is_documented():
    from eval_firewall.config import AuditsConfig, Config, DatasetConfig

    text = (ROOT / "README.md").read_text()
    for name in Config.model_fields:
        if name not in ("root", "source"):
            assert f"`{name}" in text, name
    for name in DatasetConfig.model_fields:
        assert f"`datasets[].{name}`" in text, name
    for audit, model in AuditsConfig.model_fields.items():
        assert audit in text
        for key in model.annotation.model_fields:
            assert f"{key}" in text, f"audits.{audit}.{key}"
