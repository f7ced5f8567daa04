"""`.eval-firewall.yml`: parsing, defaults, and one exact line per mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import BASIC_CONFIG
from eval_firewall.audits import RULES
from eval_firewall.config import CONFIG_FILE, find_config, load_config, parse_config, resolve_paths
from eval_firewall.errors import UserError
from eval_firewall.findings import Severity

ONE_EVAL = """\
datasets:
  - name: ev
    role: eval
    paths: ["data/*.jsonl"]
    text: question
"""


def parse(text: str, root: Path = Path(".")):
    return parse_config(text, source=CONFIG_FILE, root=root, rules=RULES)


def error_of(text: str) -> str:
    with pytest.raises(UserError) as info:
        parse(text)
    return str(info.value)


def test_basic_config_has_the_documented_defaults():
    config = parse(BASIC_CONFIG)
    assert [d.name for d in config.datasets] == ["train", "eval"]
    assert [d.role for d in config.datasets] == ["train", "eval"]
    assert config.datasets[1].text == ["question"]
    assert config.datasets[1].label == "answer"
    assert config.fail_on == "error"
    assert config.audits.overlap.near_duplicate.threshold == 0.8
    assert config.audits.overlap.semantic.enabled is False
    assert config.audits.provenance.missing == "warning"
    assert config.audits.provenance.allow_generated_eval is False
    assert config.datasets_with_role("train")[0].name == "train"


def test_issue_example_config_parses_with_nested_provenance_paths():
    text = """\
datasets:
  - name: gsm8k-train
    role: train              # train | eval
    paths: ["data/train/*.jsonl"]
    text: [question]
    label: answer
    id: id
    provenance:
      label_source: meta.label_source
      verified_by: meta.verified_by
      generator: meta.generator
  - name: gsm8k-eval
    role: eval
    paths: ["data/eval/*.jsonl"]
    text: [question]
    label: answer
audits:
  overlap:
    near_duplicate: {threshold: 0.8}
  provenance: {}
fail_on: error
"""
    config = parse(text)
    train = config.dataset("gsm8k-train")
    assert train.provenance.label_source == "meta.label_source"
    assert train.provenance.generator == "meta.generator"
    assert train.id == "id"
    assert config.dataset("gsm8k-eval").provenance is None


def test_a_single_string_is_accepted_for_text_and_paths():
    config = parse(ONE_EVAL.replace('["data/*.jsonl"]', "data/*.jsonl"))
    assert config.datasets[0].paths == ["data/*.jsonl"]
    assert config.datasets[0].text == ["question"]


@pytest.mark.parametrize("extra, expected", [
    ("colour: red\n",
     ".eval-firewall.yml:6: field 'colour': unknown key"),
    ("audits:\n  overlap:\n    near_duplicate: {threshhold: 0.5}\n",
     ".eval-firewall.yml:8: field 'audits.overlap.near_duplicate.threshhold': unknown key"),
    ("audits:\n  overlap:\n    near_duplicate: {threshold: high}\n",
     ".eval-firewall.yml:8: field 'audits.overlap.near_duplicate.threshold': Input should be a "
     "valid number, unable to parse string as a number (got 'high')"),
    ("audits:\n  overlap:\n    near_duplicate:\n      threshold: 1.5\n",
     ".eval-firewall.yml:9: field 'audits.overlap.near_duplicate.threshold': Input should be "
     "less than or equal to 1 (got 1.5)"),
    ("audits:\n  provenance:\n    allow_generated_eval: sometimes\n",
     ".eval-firewall.yml:8: field 'audits.provenance.allow_generated_eval': Input should be a "
     "valid boolean, unable to interpret input (got 'sometimes')"),
    ("fail_on: sometimes\n",
     ".eval-firewall.yml:6: field 'fail_on': Input should be 'error', 'warning', 'notice' or "
     "'never' (got 'sometimes')"),
    ("root: /etc\n",
     ".eval-firewall.yml:6: field 'root': unknown key"),
    ("fail_on: error\nfail_on: never\n",
     ".eval-firewall.yml:7: invalid YAML: duplicate key 'fail_on'"),
    ("severity:\n  modle-label: off\n",
     ".eval-firewall.yml:7: field 'severity.modle-label': unknown rule "
     "(did you mean 'model-label'?)"),
    ("severity:\n  model-label: fatal\n",
     ".eval-firewall.yml:7: field 'severity.model-label': Input should be 'error', 'warning', "
     "'notice' or 'off' (got 'fatal')"),
])
def test_config_mistakes_are_one_line_naming_line_and_key(extra, expected):
    assert error_of(ONE_EVAL + extra) == expected


def test_unknown_key_inside_a_dataset_names_its_index_and_line():
    assert error_of(ONE_EVAL + "    colour: red\n") == \
        ".eval-firewall.yml:6: field 'datasets[0].colour': unknown key"


def test_wrong_role_and_wrong_list_type():
    assert error_of(ONE_EVAL.replace("role: eval", "role: dev")) == \
        ".eval-firewall.yml:3: field 'datasets[0].role': Input should be 'train' or 'eval' " \
        "(got 'dev')"
    assert error_of(ONE_EVAL.replace('["data/*.jsonl"]', "5")) == \
        ".eval-firewall.yml:4: field 'datasets[0].paths': Input should be a valid list (got 5)"


def test_missing_required_key_points_at_the_list_item():
    text = "datasets:\n  - role: eval\n    paths: [x]\n    text: q\n"
    assert error_of(text) == \
        ".eval-firewall.yml:2: field 'datasets[0].name': required key is missing"
    assert error_of("fail_on: error\n") == \
        ".eval-firewall.yml: field 'datasets': required key is missing"


def test_invalid_yaml_names_the_line():
    text = ONE_EVAL + "audits: {overlap: [\n"
    message = error_of(text)
    assert message.startswith(".eval-firewall.yml:7: invalid YAML: ")
    assert "\n" not in message


def test_empty_or_non_mapping_config():
    expected = ".eval-firewall.yml:1: the config must be a mapping with a 'datasets' key"
    assert error_of("") == expected
    assert error_of("- a\n- b\n") == expected
    assert error_of("datasets: []\n") == \
        ".eval-firewall.yml:1: field 'datasets': List should have at least 1 item after " \
        "validation, not 0"


def test_duplicate_dataset_name_and_no_eval_dataset():
    twice = ONE_EVAL + ONE_EVAL.split("\n", 1)[1]
    assert error_of(twice) == \
        ".eval-firewall.yml:6: field 'datasets[1].name': duplicate dataset name 'ev'"
    assert error_of(ONE_EVAL.replace("role: eval", "role: train")) == \
        ".eval-firewall.yml: field 'datasets': no dataset has role 'eval'"


def test_audit_dataset_must_name_a_configured_dataset():
    text = ONE_EVAL + "audits:\n  invariance:\n    dataset: nope\n"
    assert error_of(text) == \
        ".eval-firewall.yml:8: field 'audits.invariance.dataset': no dataset named 'nope'"


def test_unknown_rule_without_a_close_match_lists_the_rules():
    message = error_of(ONE_EVAL + "severity:\n  zzz: error\n")
    assert message.startswith(".eval-firewall.yml:7: field 'severity.zzz': unknown rule "
                              "(known rules: ")
    for rule in RULES:
        assert rule in message


def test_every_registered_rule_is_accepted_under_severity():
    rules = RULES
    assert {"invalid-row", "exact-duplicate", "near-duplicate", "eval-duplicate", "model-label",
            "unverified-label", "generated-eval-row", "shared-generator",
            "machine-generated-card", "missing-provenance"} <= set(rules)
    lines = "".join(f"  {rule}: notice\n" for rule in sorted(rules))
    config = parse(ONE_EVAL + "severity:\n" + lines)
    assert set(config.severity) == set(rules)


def test_unquoted_off_turns_a_rule_off():
    # YAML 1.1 reads a bare `off` as false.
    config = parse(ONE_EVAL + "severity:\n  model-label: off\n  near-duplicate: warning\n"
                   "audits:\n  provenance:\n    missing: off\n")
    assert config.severity_of("model-label", Severity.ERROR) is None
    assert config.severity_of("near-duplicate", Severity.ERROR) is Severity.WARNING
    assert config.severity_of("exact-duplicate", Severity.ERROR) is Severity.ERROR
    assert config.audits.provenance.missing == "off"


def test_unknown_dataset_lookup():
    config = parse(ONE_EVAL)
    with pytest.raises(UserError, match=r"no dataset named 'x' \(datasets: ev\)"):
        config.dataset("x")


def test_load_config_root_defaults_to_the_config_directory(tmp_path: Path):
    (tmp_path / "cfg").mkdir()
    path = tmp_path / "cfg" / "audit.yml"
    path.write_text(ONE_EVAL, encoding="utf-8")
    config = load_config(path)
    assert config.root == (tmp_path / "cfg").resolve()
    assert config.source == "audit.yml"
    config = load_config(path, root=tmp_path)
    assert config.root == tmp_path.resolve()
    assert config.source == "cfg/audit.yml"


def test_load_config_of_a_missing_file(tmp_path: Path):
    with pytest.raises(UserError) as info:
        load_config(tmp_path / "nope.yml")
    assert str(info.value) == f"{tmp_path / 'nope.yml'}: config file not found"


def test_find_config_walks_up_to_the_repository_root(tmp_path: Path):
    (tmp_path / ".git").mkdir()
    (tmp_path / CONFIG_FILE).write_text(ONE_EVAL, encoding="utf-8")
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert find_config(deep) == (tmp_path / CONFIG_FILE).resolve()


def test_find_config_stops_at_the_repository_root(tmp_path: Path):
    (tmp_path / CONFIG_FILE).write_text(ONE_EVAL, encoding="utf-8")  # above the repo: ignored
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    with pytest.raises(UserError) as info:
        find_config(repo)
    assert str(info.value) == (f"no {CONFIG_FILE} found in {repo.resolve()} or the repository "
                               "root above it (pass --config FILE)")


def test_globs_resolve_sorted_recursive_and_deduplicated(tmp_path: Path):
    for name in ("data/b.jsonl", "data/a.jsonl", "data/sub/c.jsonl", "data/notes.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}\n", encoding="utf-8")
    text = ONE_EVAL.replace('["data/*.jsonl"]', '["data/**/*.jsonl", "data/a.jsonl"]')
    config = parse(text, root=tmp_path)
    files = resolve_paths(config, config.datasets[0])
    assert [f.relative_to(tmp_path).as_posix() for f in files] == \
        ["data/a.jsonl", "data/b.jsonl", "data/sub/c.jsonl"]


def test_glob_matching_nothing_is_an_error(tmp_path: Path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.jsonl").write_text("{}\n", encoding="utf-8")
    config = parse(ONE_EVAL.replace("data/*.jsonl", "data/*.parquet"), root=tmp_path)
    with pytest.raises(UserError) as info:
        resolve_paths(config, config.datasets[0])
    assert str(info.value) == \
        ".eval-firewall.yml:4: field 'datasets[0].paths': glob 'data/*.parquet' matches no file"


def test_config_file_encoding(tmp_path: Path):
    (tmp_path / "bom.yml").write_bytes(b"\xef\xbb\xbf" + ONE_EVAL.encode("utf-8"))
    assert load_config(tmp_path / "bom.yml").datasets[0].name == "ev"
    (tmp_path / "latin.yml").write_bytes(ONE_EVAL.replace("ev", "\xe9v").encode("latin-1"))
    with pytest.raises(UserError) as info:
        load_config(tmp_path / "latin.yml")
    assert str(info.value).startswith(
        f"{tmp_path / 'latin.yml'}: cannot read the config: 'utf-8' codec can't decode byte 0xe9")


def test_distribution_has_its_own_section_and_the_old_key_is_its_alias():
    own = parse(ONE_EVAL + "audits:\n  distribution: {max_auc: 0.7, severity: error}\n")
    alias = parse(ONE_EVAL + "audits:\n  overlap:\n    distribution: {max_auc: 0.7, "
                  "severity: error}\n")
    assert own.audits.distribution == alias.audits.distribution
    assert own.audits.distribution.max_auc == 0.7
    assert parse(ONE_EVAL).audits.distribution.max_auc == 0.6


def test_distribution_and_its_alias_together_are_an_error():
    message = error_of(ONE_EVAL + "audits:\n  distribution: {max_auc: 0.7}\n  overlap:\n"
                       "    distribution: {max_auc: 0.8}\n")
    assert message.startswith(".eval-firewall.yml:9: field 'audits.overlap.distribution': "
                              "'audits.distribution' is given too: set one of them")


def test_a_rule_severity_comes_from_severity_then_its_own_key_then_its_default():
    config = parse(ONE_EVAL + "invalid_rows: warning\naudits:\n  provenance: {missing: off}\n"
                   "  distribution: {severity: notice}\nseverity:\n  duplicate-id: notice\n")
    assert config.severity_for(RULES["invalid-row"]) is Severity.WARNING
    assert config.severity_for(RULES["missing-provenance"]) is None
    assert config.severity_for(RULES["same-generator"]) is Severity.NOTICE
    assert config.severity_for(RULES["duplicate-id"]) is Severity.NOTICE
    assert config.severity_for(RULES["model-label"]) is Severity.ERROR
    override = parse(ONE_EVAL + "invalid_rows: warning\nseverity:\n  invalid-row: off\n")
    assert override.severity_for(RULES["invalid-row"]) is None


def test_without_a_catalogue_severity_keys_wait_for_the_audits():
    config = parse_config(ONE_EVAL + "severity:\n  zzz: error\n", source=CONFIG_FILE,
                          root=Path("."))
    assert config.severity == {"zzz": "error"}
