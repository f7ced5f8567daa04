"""Choosing and loading a run's embedders: the full model on its runtime (:func:`load_embedder`),
the static model distilled from it (:func:`static_embedder`), both created on first use
(:class:`Models`), or made ahead of time into a directory (:func:`prepare`)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path

from ..config.base import DEFAULT_MODEL
from ..errors import UserError
from ..home import user_home
from .base import PACKAGED, Embedder, Runtime, prebuilt_dirs
from .full import SentenceTransformerEmbedder
from .onnx import FullModel, OnnxEmbedder, Pipeline, _export_onnx, _load_onnx, onnx_key
from .static import StaticEmbedder, _distill, _load_static, _store, static_key


def load_embedder(model: str = DEFAULT_MODEL, batch_size: int = 64, *,
                  config_path: str | None = None, runtime: Runtime = "onnx",
                  home: Path | None = None, prebuilt: Sequence[Path] | None = None,
                  announce: Callable[[str], contextlib.AbstractContextManager[object]] | None = None
                  ) -> FullModel:
    """The configured sentence-transformers model; a UserError naming the config key if it
    cannot be found offline. The weights load on the first ``encode``.

    The one place the runtime is chosen: ONNX Runtime (:class:`OnnxEmbedder`, exported on first
    use and kept like the static model) for every model whose pipeline it can run; torch
    (sentence-transformers itself) for any other, or when ``runtime="torch"`` (the reference
    the tests compare with)."""
    reference = SentenceTransformerEmbedder(model, batch_size, config_path=config_path)
    pipeline = Pipeline.read(reference.directory) if runtime == "onnx" else None
    if pipeline is None:
        return reference
    return OnnxEmbedder(reference, pipeline, home=home, prebuilt=prebuilt, announce=announce)


def static_embedder(model: FullModel | str, home: Path | None = None, *,
                    prebuilt: Sequence[Path] | None = None,
                    announce: Callable[[str], contextlib.AbstractContextManager[object]] | None = None
                    ) -> StaticEmbedder:
    """A static model distilled from ``model``, distilled at most once per user.

    Looked up as ``<dir>/<key>/`` in each read-only ``prebuilt`` directory (default:
    ``$EVAL_FIREWALL_MODELS``, e.g. the one baked into the action's image), then in
    ``home/static/`` (default: :func:`~eval_firewall.home.user_home`); distilled into the latter
    when found nowhere. ``key`` names the full model's files by content hash. ``announce``
    (e.g. a progress stage) is entered around a distillation, with what it is and where it is
    kept.
    """
    parent = load_embedder(model) if isinstance(model, str) else model
    key = static_key(parent)
    store = (user_home() if home is None else Path(home)) / "static"
    dirs = [*(prebuilt_dirs() if prebuilt is None else prebuilt), store]
    for directory in dirs:
        loaded = _load_static(Path(directory) / key, owned=directory is store)
        if loaded is not None:
            return StaticEmbedder(loaded, key)
    what = (f"distil a static retrieval model from {parent.name} (one time: the result is "
            f"cached in {store})")
    with announce(what) if announce else contextlib.nullcontext():
        distilled = _distill(parent)
    _store(distilled, store, key)
    return StaticEmbedder(distilled, key)


class Models:
    """The embedders of one run, each created on first use (never when nothing needs it)."""

    def __init__(self, model: str = DEFAULT_MODEL, batch_size: int = 64, *,
                 home: Path | None = None, config_path: str | None = None,
                 wrap: Callable[..., Embedder] | None = None,
                 announce: Callable[[str], contextlib.AbstractContextManager[object]] | None = None
                 ) -> None:
        self.model, self.batch_size = model, batch_size
        self.announce = announce    # e.g. Progress.stage: entered around a distillation
        self.home, self.config_path = home, config_path   # home: None for user_home()
        # wrap(embedder, cheap=...): e.g. a caching embedder; ``cheap`` for the static model.
        self.wrap = wrap or (lambda embedder, cheap: embedder)
        self._raw: FullModel | None = None
        self._embedder: Embedder | None = None
        self._retriever: Embedder | None = None

    def _full(self) -> FullModel:
        if self._raw is None:
            self._raw = load_embedder(self.model, self.batch_size, config_path=self.config_path,
                                      home=self.home, announce=self.announce)
        return self._raw

    def load_in_background(self) -> None:
        """Start loading the full model now, in a thread (see
        :meth:`OnnxEmbedder.load_in_background`)."""
        self._full().load_in_background()

    def embedder(self) -> Embedder:
        """The full model (on ONNX Runtime when it can; loaded on its first encode)."""
        if self._embedder is None:
            self._embedder = self.wrap(self._full(), cheap=False)
        return self._embedder

    def retriever(self) -> Embedder:
        """The static model distilled from it (distilled once per user, see
        :func:`static_embedder`): call it only when static retrieval runs."""
        if self._retriever is None:
            self._retriever = self.wrap(static_embedder(self._full(), self.home,
                                                        announce=self.announce), cheap=True)
        return self._retriever


def prepare(directory: Path, model: str = DEFAULT_MODEL) -> list[Path]:
    """Make ``model``'s ONNX export and static model in ``directory`` (a directory for
    ``$EVAL_FIREWALL_MODELS``, e.g. at image build time: ``directory/<key>/`` each) and return
    their paths; the packaged static model is copied instead when it is that model's. A model
    ONNX Runtime cannot run gets its static model only (it runs on torch)."""
    parent = load_embedder(model, prebuilt=[], home=directory)
    key = static_key(parent)
    directory = Path(directory)
    made = []
    if isinstance(parent, OnnxEmbedder):
        made.append(_load_onnx(directory / onnx_key(parent.reference))
                    or _export_onnx(parent.reference, directory, onnx_key(parent.reference)))
    if _load_static(directory / key) is None:
        if _load_static(PACKAGED / key) is not None:      # shipped: copied, not distilled
            import shutil
            directory.mkdir(parents=True, exist_ok=True)
            shutil.copytree(PACKAGED / key, directory / key, dirs_exist_ok=True)
        else:
            _store(_distill(parent), directory, key)
    if _load_static(directory / key) is None:
        raise UserError(f"cannot write the static model to {directory / key}")
    return [*made, directory / key]
