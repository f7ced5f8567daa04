"""The docs site stays true: generated pages current, the site builds strictly, and the hand-written
pages that quote the code (config keys, the layout, a real run's output) agree with it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

from conftest import ROOT

DOCS = ROOT / "docs"
OFFLINE = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "HF_HUB_OFFLINE": "1"}


def page(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def test_generated_pages_and_schema_are_current():
    done = subprocess.run([sys.executable, "docs/generate.py", "--check"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_stale_page_fails_the_check_and_names_the_command(tmp_path):
    """Hand-edit a generated block in a copy: --check fails naming the page and the command,
    and a run of the generator puts the block back."""
    copy = tmp_path / "repo"
    shutil.copytree(DOCS, copy / "docs")
    shutil.copytree(ROOT / "bench" / "results", copy / "bench" / "results")
    shutil.copytree(ROOT / "schema", copy / "schema")
    shutil.copy(ROOT / "action.yml", copy)
    (copy / "src" / "eval_firewall" / "data").mkdir(parents=True)
    shutil.copy(ROOT / "src" / "eval_firewall" / "data" / "eval-firewall.schema.json",
                copy / "src" / "eval_firewall" / "data")
    target = copy / "docs" / "audits" / "provenance.md"
    good = target.read_text(encoding="utf-8")
    stale = good.replace("| `model-label` | error | `severity", "| `model-label` | notice | `severity")
    assert stale != good
    target.write_text(stale, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, "docs/generate.py", "--check"], cwd=copy,
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 1
    assert "docs/audits/provenance.md" in done.stdout and "python docs/generate.py" in done.stdout
    done = subprocess.run([sys.executable, "docs/generate.py"], cwd=copy, capture_output=True,
                          text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    assert target.read_text(encoding="utf-8") == good


def test_mkdocs_build_strict(tmp_path):
    """The site builds with warnings as errors (broken links and anchors, pages not in nav)."""
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
                           "--site-dir", str(tmp_path / "site")], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env=OFFLINE)
    assert done.returncode == 0, done.stdout + done.stderr
    security = (tmp_path / "site" / "security" / "index.html").read_text(encoding="utf-8")
    assert "What a pull request author controls" in security     # SECURITY.md, included
    assert "Rules reference" in (tmp_path / "site" / "reference" / "rules" / "index.html").read_text(
        encoding="utf-8")


def test_every_page_is_in_the_nav():
    import yaml

    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))["nav"]

    def files(node):
        if isinstance(node, str):
            yield node
        elif isinstance(node, list):
            for item in node:
                yield from files(item)
        elif isinstance(node, dict):
            for value in node.values():
                yield from files(value)

    listed = set(files(nav))
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert pages == listed


def test_every_config_field_has_a_description():
    """The configuration reference and the JSON Schema take their wording from the models: a
    field added without ``description=`` would be a blank line in both."""
    from eval_firewall.config import Config
    from eval_firewall.config.schema import _models

    missing = [f"{name}.{field}" for name, model in _models(Config).items()
               for field, info in model.model_fields.items() if not info.description]
    assert not missing, f"add description= to {missing}, then run python docs/generate.py"


def test_every_config_key_is_in_the_configuration_reference():
    from eval_firewall.config import AuditsConfig, Config, DatasetConfig

    text = page("reference/configuration.md")
    for name, field in Config.model_fields.items():
        if name in ("root", "source"):
            assert f"`{name}`" not in text, name      # the loader's, not the file's
        else:
            assert f"`{name}" in text, name
        assert field.description, name
    for name in DatasetConfig.model_fields:
        assert f"`datasets[].{name}`" in text, name
    for audit, model in AuditsConfig.model_fields.items():
        for key, field in model.annotation.model_fields.items():
            assert f"`audits.{audit}.{key}" in text, f"audits.{audit}.{key}"
            assert field.description, f"audits.{audit}.{key}"


def test_rules_reference_names_every_rule_and_each_audit_page_its_own():
    from eval_firewall.audits import AUDITS, RULES

    text = page("reference/rules.md")
    assert all(f"`{rule}`" in text for rule in RULES)
    for audit in AUDITS:
        own = page({"distribution": "audits/same-generator.md"}.get(audit.name,
                                                                     f"audits/{audit.name}.md"))
        assert all(f"| `{r.id}` |" in own for r in audit.rules), audit.name


def test_cli_reference_has_every_command():
    from eval_firewall.cli import main

    text = page("reference/cli.md")
    for name in main.commands:
        assert f"## `eval-firewall {name}`" in text
        assert f"Usage: eval-firewall {name} [OPTIONS]" in text


def test_benchmark_tables_come_from_committed_results_with_date_machine_and_load():
    import json

    text = page("benchmarks.md")
    results = sorted((ROOT / "bench" / "results").glob("*.json"))
    assert results
    for path in results:
        if path.stem == "calibration":
            # its own format (both scorings side by side), rendered on docs/audits/overlap.md by
            # bench/calibrate.py --doc and checked by tests/unit/test_calibration_doc.py
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        run = data["run"]
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", run["date"]) and run["machine"] and run["load"]
        assert f"<!-- generated: bench {path.stem} -->" in text, path.name
        assert f"Run {run['date']} on {run['machine']}" in text
        for row in data["rows"]:
            assert all(str(v) in text for v in row.values()), row


def test_bench_scripts_write_result_files_the_generator_reads(tmp_path, monkeypatch):
    """bench/results.py, which the bench scripts call at the end of a run: the file it writes
    has the run's date, machine, command and load, and becomes a table with that line."""
    import importlib.util
    import json

    def load(name, path):
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    results = load("bench_results", ROOT / "bench" / "results.py")
    generate = load("docs_generate", DOCS / "generate.py")
    monkeypatch.setattr(results, "RESULTS", tmp_path / "bench" / "results")
    monkeypatch.setattr(generate, "ROOT", tmp_path)
    monkeypatch.setattr(sys, "argv", [str(ROOT / "bench" / "limits.py"), "--line-mb", "1"])
    path = results.write("limits", ["Case", "Time"], [{"Case": "baseline", "Time": "4.5 s"}],
                         load=results.load(), notes="a note")
    run = json.loads(path.read_text(encoding="utf-8"))["run"]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", run["date"])
    assert re.match(r"\d+ cores", run["machine"]) and re.fullmatch(r"[\d.]+/[\d.]+/[\d.]+", run["load"])
    assert run["command"] == "python bench/limits.py --line-mb 1"
    table = generate.bench_table("limits")
    assert table.startswith(f"Run {run['date']} on {run['machine']}; command `{run['command']}`")
    assert "| baseline | 4.5 s |" in table and "a note" in table


def test_layout_names_every_module():
    """The development page's Layout is the package tree: every module and package, in it."""
    text = page("development.md")
    layout = text[text.index("<!-- generated: layout -->"):text.index("<!-- end: layout -->")]
    package = ROOT / "src" / "eval_firewall"
    listed = re.findall(r"^( *)- `([^`]+)`", layout, re.M)
    # rebuild each listed entry's path from its indentation
    paths, stack = set(), []
    for indent, name in listed[1:]:
        depth = len(indent) // 4 - 1
        stack[depth:] = [name.rstrip("/")]
        paths.add("/".join(stack))
    on_disk = {p.relative_to(package).as_posix() for p in package.rglob("*.py")
               if p.name != "__init__.py" and "__pycache__" not in p.parts}
    on_disk |= {p.relative_to(package).as_posix() for p in package.rglob("__init__.py")
                if p.parent != package}
    on_disk = {n[:-len("/__init__.py")] if n.endswith("/__init__.py") else n for n in on_disk}
    assert on_disk - paths == set(), f"the Layout does not name {sorted(on_disk - paths)}"
    assert paths - on_disk - {"report/templates"} == set()


def _block_after(text: str, marker: str) -> list[str]:
    start = text.index("```text\n", text.index(marker)) + len("```text\n")
    return text[start:text.index("```", start)].splitlines()


def test_terminal_output_excerpt_comes_from_a_real_run(tmp_path, static_cache):
    """The text-format excerpt on the Reports page and the verdict quoted in the README are the
    bundled example's own."""
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    cache = tmp_path / "cache"
    shutil.copytree(static_cache / "static", cache / "static")   # no distillation here
    done = subprocess.run([sys.executable, "-m", "eval_firewall", "audit", "-q", "--format",
                           "text", "--cache-dir", str(cache)], cwd=ROOT / "examples" / "gsm8k",
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 1, done.stderr
    real = done.stdout.splitlines()
    excerpt = _block_after(page("reports.md"), "## Terminal output")
    assert excerpt[0] == real[0]
    for line in excerpt:
        assert line == "..." or line in real, line
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    top = " ".join(readme[:readme.index("## ")].split())
    assert f"`{real[0]}`" in top


def test_config_check_example_is_the_real_message(tmp_path):
    example = tmp_path / "example"
    shutil.copytree(ROOT / "examples" / "gsm8k", example)
    config = example / ".eval-firewall.yml"
    config.write_text(config.read_text().replace("label: answer", "label: answr", 1))
    done = subprocess.run([sys.executable, "-m", "eval_firewall", "audit", "-q"], cwd=example,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    [line] = _block_after(page("getting-started.md"), "a configured field that no row has")
    assert done.stderr == line + "\n"
