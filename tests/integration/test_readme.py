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


def _block_after(text: str, marker: str) -> list[str]:
    start = text.index("```text\n", text.index(marker)) + len("```text\n")
    return text[start:text.index("```", start)].splitlines()


def test_readme_terminal_output_and_first_paragraph_come_from_a_real_run(tmp_path, static_cache):
    """The text-format excerpt and the verdict quoted at the top are the example's own."""
    import os
    import shutil

    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    cache = tmp_path / "cache"
    shutil.copytree(static_cache / "static", cache / "static")   # no distillation here
    done = subprocess.run([sys.executable, "-m", "eval_firewall", "audit", "-q", "--format",
                           "text", "--cache-dir", str(cache)], cwd=ROOT / "examples" / "gsm8k",
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 1, done.stderr
    real = done.stdout.splitlines()
    text = (ROOT / "README.md").read_text()
    excerpt = _block_after(text, "### Terminal output")
    assert excerpt[0] == real[0]
    for line in excerpt:
        assert line == "..." or line in real, line
    top = " ".join(text[:text.index("## ")].split())
    assert f"`{real[0]}`" in top


def test_readme_config_check_example_is_the_real_message(tmp_path):
    import shutil

    example = tmp_path / "example"
    shutil.copytree(ROOT / "examples" / "gsm8k", example)
    config = example / ".eval-firewall.yml"
    config.write_text(config.read_text().replace("label: answer", "label: answr", 1))
    done = subprocess.run([sys.executable, "-m", "eval_firewall", "audit", "-q"], cwd=example,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    [line] = _block_after((ROOT / "README.md").read_text(), "a configured field that no row has")
    assert done.stderr == line + "\n"


def test_readme_layout_names_every_module():
    """The Layout paragraph is true to the package tree: every module and subpackage named."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    layout = text[text.index("Layout: `src/eval_firewall/`"):text.index("The Python API is")]
    package = ROOT / "src" / "eval_firewall"
    names = [f"`{p.name}`" for p in package.glob("*.py")
             if p.name not in ("__init__.py", "__main__.py")]
    names += [f"`{p.name}/`" for p in package.iterdir()
              if p.is_dir() and (p / "__init__.py").exists()]
    missing = [n for n in names if n not in layout]
    assert not missing, f"README's Layout paragraph does not name {missing}"
