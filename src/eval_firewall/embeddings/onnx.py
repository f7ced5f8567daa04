"""The full model on ONNX Runtime: its pipeline read from the model's files, the export made
once with torch, and :class:`OnnxEmbedder`, which encodes without torch."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from ..home import user_home
from .base import TORCH_EXTRA, LoadsInBackground, _normalized, _quiet, prebuilt_dirs
from .full import SentenceTransformerEmbedder

# The graph optimizations saved with an export: "extended" fusions (attention, GELU, layer
# normalization) run on any x86-64 CPU, their kernels picking the instruction set at run time;
# the "all" level adds layout transformations for the CPU that saved the graph, not portable to
# the machines (GitHub's runners) that run an image built here.
ONNX_LEVEL = "extended"
# Pooling modes computed from the exported last hidden state; the legacy boolean keys, in the
# order sentence-transformers concatenates them.
_POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens")
_LEGACY_POOLING = {"pooling_mode_cls_token": "cls", "pooling_mode_max_tokens": "max",
                   "pooling_mode_mean_tokens": "mean",
                   "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
                   "pooling_mode_weightedmean_tokens": "weightedmean",
                   "pooling_mode_lasttoken": "lasttoken"}


class Pipeline:
    """What a sentence-transformers model does after its transformer, read from its files:
    tokenizer, maximum length, pooling and normalization. None from :meth:`read` when the
    model is anything else (e.g. a Dense layer, weighted pooling): it then runs on torch."""

    def __init__(self, tokenizer_file: Path, max_length: int, lower: bool,
                 modes: tuple[str, ...], normalize: bool, dim: int, pad: tuple[int, str]) -> None:
        self.tokenizer_file, self.max_length, self.lower = tokenizer_file, max_length, lower
        self.modes, self.normalize, self.dim, self.pad = modes, normalize, dim, pad

    @classmethod
    def read(cls, directory: Path) -> Pipeline | None:
        """The pipeline of the model in ``directory``, or None when ONNX cannot run it."""
        try:
            modules = json.loads((directory / "modules.json").read_text())
            kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
            if kinds[:2] != ["Transformer", "Pooling"] or set(kinds[2:]) - {"Normalize"} \
                    or modules[0].get("path", "") != "":
                return None
            pooling = json.loads((directory / modules[1]["path"] / "config.json").read_text())
            modes = _pooling_modes(pooling)
            if not modes or pooling.get("include_prompt", True) is not True:
                return None
            tokenizer_file = directory / "tokenizer.json"
            if not tokenizer_file.is_file():
                return None
            st = _json_or_empty(directory / "sentence_bert_config.json")
            tok = _json_or_empty(directory / "tokenizer_config.json")
            positions = _json_or_empty(directory / "config.json").get("max_position_embeddings")
            if isinstance(st.get("max_seq_length"), int):     # the model's own setting
                max_length = st["max_seq_length"]
            else:       # else the tokenizer's, capped by the positions (sentence-transformers)
                limits = [v for v in (tok.get("model_max_length"), positions)
                          if isinstance(v, int) and 0 < v]
                if not limits:
                    return None
                max_length = min(limits)
            dim = pooling.get("word_embedding_dimension", pooling.get("embedding_dimension"))
            pad = tok.get("pad_token")
            pad_token = pad.get("content") if isinstance(pad, dict) else pad
            return cls(tokenizer_file, max_length, bool(st.get("do_lower_case")), modes,
                       "Normalize" in kinds, int(dim) * len(modes),
                       (-1, str(pad_token)) if pad_token else (0, "[PAD]"))
        except (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError):
            return None

    def tokenizer(self) -> Any:
        """The model's own tokenizer: truncation at the maximum length, padding to the longest."""
        from tokenizers import Tokenizer
        tokenizer = Tokenizer.from_file(str(self.tokenizer_file))
        tokenizer.enable_truncation(max_length=self.max_length)
        pad_id, pad_token = self.pad
        if pad_id < 0:
            found: int | None = tokenizer.token_to_id(pad_token)
            pad_id = 0 if found is None else found
        tokenizer.enable_padding(pad_id=pad_id, pad_token=pad_token)
        return tokenizer

    def pool(self, hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Sentence vectors from token vectors, as the model's Pooling (+ Normalize) does."""
        weights = mask[:, :, None].astype(hidden.dtype)
        parts = []
        for mode in self.modes:
            if mode == "cls":
                parts.append(hidden[:, 0])
            elif mode == "max":
                parts.append(np.where(weights > 0, hidden, np.float32(-1e9)).max(axis=1))
            else:
                total = (hidden * weights).sum(axis=1)
                count = np.maximum(weights.sum(axis=1), 1e-9)
                parts.append(total / (count if mode == "mean" else np.sqrt(count)))
        pooled = np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]
        return _normalized(pooled)   # the Embedder contract: always normalized


def _pooling_modes(pooling: dict[str, Any]) -> tuple[str, ...]:
    """The pooling modes of a Pooling config (``pooling_mode``: a name or a list, or the legacy
    ``pooling_mode_*`` flags); empty when one of them is not computed here."""
    mode = pooling.get("pooling_mode")
    if mode is None:
        modes = tuple(m for k, m in _LEGACY_POOLING.items() if pooling.get(k)) or ("mean",)
    else:
        modes = (mode,) if isinstance(mode, str) else tuple(mode)
    return modes if modes and set(modes) <= set(_POOLING_MODES) else ()


def _json_or_empty(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def onnx_key(reference: SentenceTransformerEmbedder) -> str:
    """The name of ``reference``'s ONNX export (its files' hash included)."""
    return f"onnx-{ONNX_LEVEL}-{reference.key}"


def _load_onnx(target: Path, owned: bool = False) -> Path | None:
    """The export stored at ``target`` (``<target>/model.onnx``), or None when there is none
    or it is not ours: a real directory holding only that one regular file (no symlink; with
    ``owned``, both the current user's)."""
    try:
        if target.is_symlink() or not target.is_dir():
            return None
        entries = list(target.iterdir())
        if [e.name for e in entries] != ["model.onnx"]:
            return None
        file = entries[0]
        if file.is_symlink() or not file.is_file():
            return None
        if owned and hasattr(os, "getuid") and \
                {target.stat().st_uid, file.stat().st_uid} != {os.getuid()}:
            return None
        return file
    except OSError:
        return None


def _export_onnx(reference: SentenceTransformerEmbedder, store: Path, key: str) -> Path:
    """Export ``reference``'s transformer (its last hidden state) with torch, let ONNX Runtime
    optimize the graph, and save that into ``store/key/model.onnx`` atomically (a temporary
    directory beside it, then one rename). Raises UserError naming the extra without torch."""
    import shutil
    import tempfile
    try:
        import sentence_transformers  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        raise reference._error(f"its ONNX export must be made once with torch: pip install "
                               f"'{TORCH_EXTRA}'") from None
    try:
        store.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=store))
    except OSError:     # a home that cannot be written: an export for this run only
        import atexit
        store = Path(tempfile.mkdtemp(prefix="eval-firewall-onnx-"))
        atexit.register(shutil.rmtree, store, True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=store))
    try:
        raw = tmp / "raw.onnx"
        _torch_export(reference, raw)
        _optimize(raw, tmp / "model.onnx")
        raw.unlink()
        (tmp / "model.onnx").chmod(0o644)   # readable by any user of an image it is baked into
        tmp.chmod(0o755)
        target = store / key
        if _load_onnx(target, owned=True) is None:
            if target.exists() or target.is_symlink():
                trash = Path(tempfile.mkdtemp(prefix=f".{key}.old.", dir=store))
                target.rename(trash / key)
                shutil.rmtree(trash, ignore_errors=True)
            try:
                tmp.rename(target)
            except OSError:
                pass     # a concurrent run stored it between the check and the rename
        found = _load_onnx(target, owned=True)
        if found is None:
            raise reference._error(f"cannot store its ONNX export in {target}")
        return found
    except UserError:
        raise
    except Exception as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise reference._error(f"ONNX export failed: {message}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _optimize(raw: Path, optimized: Path) -> None:
    """Let ONNX Runtime optimize the graph at ``raw`` (:data:`ONNX_LEVEL`) into ``optimized``."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(optimized)
    options.log_severity_level = 3
    ort.InferenceSession(str(raw), options, providers=["CPUExecutionProvider"])


def _torch_export(reference: SentenceTransformerEmbedder, path: Path) -> None:
    """The transformer of ``reference`` as an ONNX graph: token ids (and mask, token types) in,
    the last hidden state out, batch and sequence dynamic."""
    import torch
    with _quiet():      # the weights' loading bar, deprecation notices
        transformer = reference.model[0]
        tokenize = getattr(transformer, "preprocess", None) or transformer.tokenize
        features = tokenize(["An example sentence to trace.", "Another one."])
    auto = transformer.auto_model.eval()
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in features]

    class LastHidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.auto = auto

        def forward(self, *inputs: Any) -> Any:
            return self.auto(**dict(zip(names, inputs)), return_dict=True).last_hidden_state

    dynamic = {n: {0: "batch", 1: "sequence"} for n in [*names, "last_hidden_state"]}
    with torch.no_grad(), _quiet():
        torch.onnx.export(LastHidden(), tuple(features[n] for n in names), str(path),
                          input_names=names, output_names=["last_hidden_state"],
                          dynamic_axes=dynamic, opset_version=17, dynamo=False)


class OnnxEmbedder(LoadsInBackground):
    """A sentence-transformers model run by ONNX Runtime: no torch at encode time.

    Its transformer is exported once (with torch, :func:`_export_onnx`) and kept like the static
    model: ``<dir>/<key>/model.onnx`` in a read-only prebuilt directory (the action's image) or
    the per-user home's ``onnx/``. Tokenization uses the model's ``tokenizer.json`` with the
    ``tokenizers`` package; pooling and normalization follow its sentence-transformers files
    (:class:`Pipeline`). ``key`` is the model's (the same vectors as torch's, to 1e-5).
    """

    def __init__(self, reference: SentenceTransformerEmbedder, pipeline: Pipeline, *,
                 home: Path | None = None, prebuilt: Sequence[Path] | None = None,
                 announce: Callable[[str], contextlib.AbstractContextManager[object]] | None = None
                 ) -> None:
        super().__init__()
        self.reference, self.pipeline = reference, pipeline
        self.name, self.key, self.batch_size = reference.name, reference.key, reference.batch_size
        self.directory = reference.directory
        self._home, self._prebuilt, self.announce = home, prebuilt, announce
        self._tokenizer: Any = None

    @property
    def dim(self) -> int:
        """The size of a vector."""
        return self.pipeline.dim

    def stored(self) -> Path | None:
        """The export, when one exists: the prebuilt directories first, then the home."""
        key = onnx_key(self.reference)
        for directory in [*(prebuilt_dirs() if self._prebuilt is None else self._prebuilt)]:
            if (found := _load_onnx(Path(directory) / key)) is not None:
                return found
        return _load_onnx(self._store() / key, owned=True)

    def _store(self) -> Path:
        return (user_home() if self._home is None else Path(self._home)) / "onnx"

    def _may_load_in_background(self) -> bool:
        """Only when the export exists (an export is made in the foreground, where it is
        announced)."""
        return self.stored() is not None

    @property
    def session(self) -> Any:
        """The ONNX Runtime session (created on first use, or waited for)."""
        return self._loaded_value()

    def _load(self) -> Any:
        path = self.stored()
        if path is None:
            store, key = self._store(), onnx_key(self.reference)
            what = (f"export {self.name} to ONNX (one time: the result is cached in {store})")
            with self.announce(what) if self.announce else contextlib.nullcontext():
                path = _export_onnx(self.reference, store, key)
        import onnxruntime as ort
        options = ort.SessionOptions()
        # The graph is saved optimized: nothing left to do at session creation.
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            self._tokenizer = self.pipeline.tokenizer()
        except Exception as exc:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise self.reference._error(f"cannot load its ONNX export {path}: {message}") from None
        return session

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Normalized float32 vectors, one per text (longest first in batches, as
        sentence-transformers does, so a batch pads little)."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not len(texts):
            return out
        session = self.session
        inputs = {i.name for i in session.get_inputs()}
        prepared = [str(t) for t in texts]
        if self.pipeline.lower:
            prepared = [t.lower() for t in prepared]
        order = np.argsort([-len(t) for t in prepared], kind="stable")
        for start in range(0, len(order), self.batch_size):
            rows = order[start:start + self.batch_size]
            encoded = self._tokenizer.encode_batch([prepared[i] for i in rows])
            ids = np.array([e.ids for e in encoded], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
            feed = {"input_ids": ids, "attention_mask": mask,
                    "token_type_ids": np.array([e.type_ids for e in encoded], dtype=np.int64)}
            hidden = session.run(["last_hidden_state"],
                                 {k: v for k, v in feed.items() if k in inputs})[0]
            out[rows] = self.pipeline.pool(np.asarray(hidden, dtype=np.float32), mask)
        return out


FullModel = SentenceTransformerEmbedder | OnnxEmbedder
