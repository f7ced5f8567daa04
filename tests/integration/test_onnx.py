"""The full model on ONNX Runtime: the same vectors as sentence-transformers, an export made once
and kept like the static model, and no torch on the audit path."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from conftest import gsm8k
from eval_firewall.embeddings import (
    OnnxEmbedder,
    Pipeline,
    load_embedder,
    onnx_key,
    resolve_model,
)
from eval_firewall.embeddings.onnx import _load_onnx
from eval_firewall.errors import UserError

pytestmark = pytest.mark.model   # every test here loads a real model (the default or a copy)

HEAVY = ("torch", "transformers", "sentence_transformers")


def real_texts() -> list[str]:
    """GSM8K questions, one far longer than the maximum length (truncated), and empty ones."""
    questions = [r["question"] for r in gsm8k("test", 40)]
    return [*questions, " ".join(questions[:12]), "", "   ", "\n", "Ünïcödé — 数学 ✓"]


def test_default_model_matches_sentence_transformers(embedder, reference_embedder):
    assert isinstance(embedder, OnnxEmbedder) and embedder.key == reference_embedder.key
    texts = real_texts()
    assert len(embedder.pipeline.tokenizer().encode(texts[40]).ids) == \
        embedder.pipeline.max_length == 256      # truncated at the model's length, not 128
    ours, theirs = embedder.encode(texts), reference_embedder.encode(texts)
    assert ours.dtype == np.float32 and ours.shape == theirs.shape == (len(texts), 384)
    assert np.abs(ours - theirs).max() < 1e-5
    # and one text at a time (no padding) gives the same vectors as a batch
    assert np.abs(embedder.encode(texts[:3]) - np.vstack([embedder.encode([t])
                                                          for t in texts[:3]])).max() < 1e-5


def tiny_cls_model(path: Path) -> Path:
    """A small BERT (random weights, MiniLM's tokenizer) with CLS pooling, no normalization
    and a maximum length of 24 tokens, saved as a sentence-transformers model."""
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import BertConfig, BertModel
    try:
        from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    except ImportError:     # sentence-transformers before 6
        from sentence_transformers.models import Pooling, Transformer

    torch.manual_seed(0)
    source = Path(resolve_model("all-MiniLM-L6-v2"))
    bert = path / "bert"
    BertModel(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2,
                         num_attention_heads=2, intermediate_size=64)).save_pretrained(bert)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(source / name, bert / name)
    transformer = Transformer(str(bert), max_seq_length=24)
    pooling = Pooling(32, pooling_mode="cls")
    SentenceTransformer(modules=[transformer, pooling], device="cpu").save(str(path / "st"))
    return path / "st"


def test_a_model_with_cls_pooling_is_exported_once_and_matches(tmp_path):
    directory = tiny_cls_model(tmp_path)
    home, announced = tmp_path / "home", []
    onnx = load_embedder(str(directory), home=home, prebuilt=[],
                         announce=lambda what: announced.append(what) or _null())
    reference = load_embedder(str(directory), runtime="torch")
    assert isinstance(onnx, OnnxEmbedder)
    assert onnx.pipeline.modes == ("cls",) and not onnx.pipeline.normalize
    assert onnx.pipeline.max_length == 24 and onnx.dim == 32
    texts = real_texts()
    ours, theirs = onnx.encode(texts), reference.encode(texts)
    assert np.abs(ours - theirs).max() < 1e-5
    # exported once, announced once, stored under its key in the home
    assert len(announced) == 1 and "to ONNX" in announced[0] and str(home / "onnx") in announced[0]
    stored = home / "onnx" / onnx_key(reference) / "model.onnx"
    assert stored.is_file() and [p.name for p in stored.parent.iterdir()] == ["model.onnx"]
    again = load_embedder(str(directory), home=home, prebuilt=[],
                          announce=lambda what: announced.append(what) or _null())
    assert np.array_equal(again.encode(texts[:5]), ours[:5]) and len(announced) == 1
    # A home that cannot be written (here: a file) costs an export per run, not the run.
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("")
    unwritable = load_embedder(str(directory), home=blocked / "home", prebuilt=[])
    assert np.abs(unwritable.encode(texts[:5]) - theirs[:5]).max() < 1e-5
    assert unwritable.stored() is None and blocked.is_file()


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_pipeline_refuses_what_onnx_cannot_run(tmp_path):
    source = Path(resolve_model("all-MiniLM-L6-v2"))
    model = tmp_path / "model"
    shutil.copytree(source, model)
    assert Pipeline.read(model) is not None
    modules = json.loads((model / "modules.json").read_text())
    (model / "modules.json").write_text(json.dumps(
        modules + [{"idx": 3, "name": "3", "path": "3_Dense",
                    "type": "sentence_transformers.models.Dense"}]))
    assert Pipeline.read(model) is None                       # a Dense layer: torch runs it
    (model / "modules.json").write_text(json.dumps(modules))
    pooling = model / "1_Pooling" / "config.json"
    pooling.write_text(json.dumps({**json.loads(pooling.read_text()),
                                   "pooling_mode_weightedmean_tokens": True}))
    assert Pipeline.read(model) is None
    (model / "tokenizer.json").unlink()
    assert Pipeline.read(model) is None


def test_only_our_own_plain_export_is_loaded(tmp_path, embedder):
    good = embedder.stored()
    assert good is not None
    store = tmp_path / "onnx"
    key = onnx_key(embedder.reference)
    # a symlink to a real export, a directory with a second file, a symlinked file
    store.mkdir()
    (store / key).symlink_to(good.parent)
    assert _load_onnx(store / key, owned=True) is None
    (store / key).unlink()
    (store / key).mkdir()
    (store / key / "model.onnx").symlink_to(good)
    assert _load_onnx(store / key, owned=True) is None
    (store / key / "model.onnx").unlink()
    shutil.copy(good, store / key / "model.onnx")
    assert _load_onnx(store / key, owned=True) == store / key / "model.onnx"
    (store / key / "weights.bin").write_bytes(b"x")
    assert _load_onnx(store / key, owned=True) is None
    (store / key / "weights.bin").unlink()
    if os.getuid() == 0:
        os.chown(store / key / "model.onnx", 12345, 12345)
        assert _load_onnx(store / key, owned=True) is None    # another user's file
        assert _load_onnx(store / key) is not None             # fine in a read-only prebuilt dir


def test_a_broken_export_in_the_home_is_a_one_line_error(tmp_path, embedder):
    home = tmp_path / "home"
    target = home / "onnx" / onnx_key(embedder.reference)
    target.mkdir(parents=True)
    (target / "model.onnx").write_bytes(b"not a protobuf")
    broken = load_embedder(home=home, prebuilt=[], config_path=".eval-firewall.yml")
    with pytest.raises(UserError) as err:
        broken.encode(["text"])
    assert "ONNX export" in str(err.value) and "\n" not in str(err.value)
    assert err.value.field == "audits.overlap.semantic.model"


BLOCK_TORCH = """\
import sys
class _Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {'torch', 'sentence_transformers', 'transformers'}:
            raise ImportError('No module named ' + repr(name))
sys.meta_path.insert(0, _Blocked())
"""


def test_without_torch_a_missing_export_names_the_extra(tmp_path):
    code = BLOCK_TORCH + textwrap.dedent("""\
        from eval_firewall.embeddings import load_embedder
        from eval_firewall.errors import UserError
        try:
            load_embedder(config_path='.eval-firewall.yml').encode(['a question'])
        except UserError as exc:
            print(exc)
        """)
    env = {**os.environ, "EVAL_FIREWALL_HOME": str(tmp_path / "home"), "EVAL_FIREWALL_MODELS": ""}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip()
    assert "\n" not in line and "pip install 'eval-firewall[torch]'" in line
    assert line.startswith(".eval-firewall.yml: ") and "all-MiniLM-L6-v2" in line
    # A model ONNX Runtime cannot run (a Dense layer after pooling) needs torch to run at all.
    model = tmp_path / "dense-model"
    source = Path(resolve_model("all-MiniLM-L6-v2"))
    shutil.copytree(source, model, ignore=shutil.ignore_patterns("model.safetensors"))
    (model / "model.safetensors").symlink_to(source / "model.safetensors")
    modules = json.loads((model / "modules.json").read_text())
    (model / "modules.json").write_text(json.dumps(modules + [{
        "idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"}]))
    done = subprocess.run([sys.executable, "-c", code.replace("load_embedder(", f"load_embedder({str(model)!r}, ")],
                          env=env, capture_output=True, text=True, timeout=120)
    line = done.stdout.strip()
    assert done.returncode == 0 and "\n" not in line, done.stderr
    assert "ONNX Runtime cannot run this model" in line and "eval-firewall[torch]" in line


SITECUSTOMIZE = """\
import atexit, sys
from pathlib import Path
def _dump():
    seen = sorted({m.split('.')[0] for m in sys.modules})
    Path(__file__).with_name('modules.txt').write_text('\\n'.join(seen))
atexit.register(_dump)
"""


def watched(tmp_path: Path, monkeypatch) -> Path:
    """A sitecustomize on PYTHONPATH that lists, at exit, the top-level modules a Python
    subprocess imported (its file: the returned path)."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    paths = [str(hook), *filter(None, [os.environ.get("PYTHONPATH")])]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))
    return hook / "modules.txt"


TWO_ROWS = """\
datasets:
  - {name: train, role: train, paths: [train.jsonl], text: question}
  - {name: eval, role: eval, paths: [eval.jsonl], text: question}
"""


def test_audit_imports_no_torch_when_the_export_exists(tmp_path, monkeypatch, embedder):
    assert embedder.stored() is not None          # the session's prebuilt export
    listing = watched(tmp_path, monkeypatch)
    work = tmp_path / "work"
    work.mkdir()
    (work / ".eval-firewall.yml").write_text(TWO_ROWS)
    rows = gsm8k("train", 2)
    (work / "train.jsonl").write_text(json.dumps({"question": rows[0]["question"]}) + "\n")
    (work / "eval.jsonl").write_text(json.dumps({"question": rows[1]["question"]}) + "\n")
    cli = Path(sys.executable).with_name("eval-firewall")
    done = subprocess.run([str(cli), "audit", "--cache-dir", str(tmp_path / "cache")], cwd=work,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode in (0, 1), done.stderr
    modules = set(listing.read_text().split())
    assert "onnxruntime" in modules                # the full model did run
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))


def test_github_action_imports_no_torch_when_the_export_exists(tmp_path, monkeypatch, github,
                                                              embedder):
    import action_harness
    from action_harness import open_pr, run_action

    # The harness's config with the paraphrase search on, and a reworded train question.
    monkeypatch.setattr(action_harness, "CONFIG", action_harness.CONFIG.replace(
        "semantic: {enabled: false}", "semantic: {enabled: true}"))
    listing = watched(tmp_path, monkeypatch)
    rows = gsm8k("test", 12) + [{"question": "Natalia sold clips to 48 friends in April; in May "
                                 "she sold half as many. How many clips did she sell in the two "
                                 "months together?", "answer": "72"}]
    ws, _, head, _, payload = open_pr(tmp_path, github, rows)
    # The runner's environment has only HOME: the export is in its per-user home.
    stored = tmp_path / "home" / ".cache" / "eval-firewall" / "onnx" / onnx_key(embedder.reference)
    stored.mkdir(parents=True)
    shutil.copy(embedder.stored(), stored / "model.onnx")
    run = run_action(tmp_path, ws, "pull_request", payload, github, sha=head)
    assert run.code in (0, 1), run.stderr
    modules = set(listing.read_text().split())
    assert "onnxruntime" in modules
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))
