"""The JSON Schema of .eval-firewall.yml: generated from the models, shipped in the package and the
repository, and accepting what the loader accepts (every config the docs show) and no more."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from conftest import ROOT
from eval_firewall.config import Config, parse_config
from eval_firewall.config.schema import SCHEMA_FILE, config_schema, packaged_schema, schema_url
from eval_firewall.errors import UserError

REPOSITORY_SCHEMA = ROOT / "schema" / SCHEMA_FILE


@pytest.fixture(scope="module")
def validator():
    schema = json.loads(REPOSITORY_SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def errors(validator, config) -> list[str]:
    return [e.message for e in validator.iter_errors(config)]


def test_package_and_repository_ship_the_generated_schema():
    assert packaged_schema() == REPOSITORY_SCHEMA.read_text(encoding="utf-8")
    assert json.loads(packaged_schema()) == json.loads(json.dumps(config_schema()))
    assert config_schema()["$id"] == schema_url()
    assert schema_url().endswith("/schema/" + SCHEMA_FILE)


def test_the_bundled_example_validates_and_names_the_schema(validator):
    path = ROOT / "examples" / "gsm8k" / ".eval-firewall.yml"
    text = path.read_text(encoding="utf-8")
    assert errors(validator, yaml.safe_load(text)) == []
    first = text.splitlines()[0]
    assert first.startswith("# yaml-language-server: $schema=")
    assert (path.parent / first.split("=", 1)[1]).resolve() == REPOSITORY_SCHEMA


def test_check_jsonschema_validates_the_example_and_rejects_an_unknown_key(tmp_path):
    """The command line a user would run, on the real files."""
    example = ROOT / "examples" / "gsm8k" / ".eval-firewall.yml"
    done = subprocess.run([sys.executable, "-m", "check_jsonschema", "--schemafile",
                           str(REPOSITORY_SCHEMA), str(example)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    bad = tmp_path / ".eval-firewall.yml"
    bad.write_text(example.read_text(encoding="utf-8").replace("fail_on: error", "fail_onn: error"))
    done = subprocess.run([sys.executable, "-m", "check_jsonschema", "--schemafile",
                           str(REPOSITORY_SCHEMA), str(bad)], capture_output=True, text=True)
    assert done.returncode == 1 and "fail_onn" in done.stdout + done.stderr


def _doc_configs() -> list[tuple[str, object]]:
    """Every YAML block of the docs and README that is (part of) a config or a waiver file."""
    keys = set(Config.model_fields) - {"root", "source"}
    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for block in re.findall(r"```yaml\n(.*?)```", path.read_text(encoding="utf-8"), re.S):
            # as JSON, like an editor sees it: a YAML date is a string there
            data = json.loads(json.dumps(yaml.safe_load(block), default=str))
            if isinstance(data, dict) and data and set(data) <= keys:
                found.append((path.name, data))
            elif isinstance(data, list) and data and all(
                    isinstance(d, dict) and "fingerprint" in d for d in data):
                found.append((path.name, {"waivers": data}))
    return found


def test_every_config_the_docs_show_validates(validator):
    configs = _doc_configs()
    # the full example, the audits' sections, the waiver file
    assert {"configuration.md", "overlap.md", "disagreement.md", "invariance.md",
            "waivers.md"} <= {where for where, _ in configs}
    minimal = {"datasets": [{"name": "e", "role": "eval", "paths": "e.jsonl", "text": "q"}]}
    for where, data in configs:
        config = {**minimal, **data}
        assert errors(validator, config) == [], (where, data)


def _base() -> dict:
    return {"datasets": [{"name": "t", "role": "train", "paths": ["t.jsonl"], "text": ["q"]},
                         {"name": "e", "role": "eval", "paths": "e.jsonl", "text": "q"}]}


@pytest.mark.parametrize("change", [
    {"limits": {"max_file_bytes": "4GiB", "max_row_bytes": "512 mib"}},
    {"limits": {"max_file_bytes": 1024}},
    {"severity": {"eval-duplicate": "off", "paraphrase": False}},     # YAML 1.1: off is false
    {"audits": {"distribution": {"severity": "off"}, "provenance": {"missing": "off"}}},
    {"audits": {"overlap": {"distribution": {"max_auc": 0.7}}}},       # the alias
    {"audits": {"disagreement": {"annotations": "annotations/*.csv"}}},
    {"waivers": [{"fingerprint": "3b50c234", "reason": "r", "approved_by": "a",
                  "expires": "2027-06-30"}]},
])
def test_schema_accepts_what_the_loader_accepts(validator, tmp_path, change):
    config = {**_base(), **change}
    assert errors(validator, config) == []
    for name in ("t.jsonl", "e.jsonl"):
        (tmp_path / name).write_text('{"q": "x"}\n')
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "a.csv").write_text("row_id,answer\n")
    parse_config(yaml.safe_dump(config), source=".eval-firewall.yml", root=tmp_path)


@pytest.mark.parametrize("change, key", [
    ({"colour": "red"}, "colour"),
    ({"audits": {"overlap": {"exact": {"enabeld": True}}}}, "enabeld"),
    ({"limits": {"max_file_bytes": "4 parsecs"}}, "max_file_bytes"),
    ({"severity": {"no-such-rule": "error"}}, "no-such-rule"),
    ({"fail_on": "sometimes"}, "fail_on"),
    ({"root": "/"}, "root"),
    ({"source": "x.yml"}, "source"),
])
def test_schema_and_loader_reject_the_same_mistakes(validator, tmp_path, change, key):
    config = {**_base(), **change}
    assert errors(validator, config), change
    for name in ("t.jsonl", "e.jsonl"):
        (tmp_path / name).write_text('{"q": "x"}\n')
    from eval_firewall.audits import RULES

    with pytest.raises(UserError) as err:
        parse_config(yaml.safe_dump(config), source=".eval-firewall.yml", root=tmp_path,
                     rules=RULES)
    assert key in str(err.value)


def test_init_writes_the_schema_line(tmp_path):
    for part, rows in (("train", 3), ("eval", 2)):
        folder = tmp_path / "data" / part
        folder.mkdir(parents=True)
        (folder / f"{part}.jsonl").write_text("".join(
            json.dumps({"question": f"q{part}{i}", "answer": str(i)}) + "\n" for i in range(rows)))
    done = subprocess.run([sys.executable, "-m", "eval_firewall", "init"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    first = Path(tmp_path / ".eval-firewall.yml").read_text(encoding="utf-8").splitlines()[0]
    assert first == f"# yaml-language-server: $schema={schema_url()}"
    assert re.search(r"/v\d+\.\d+\.\d+/schema/eval-firewall\.schema\.json$", first)
