"""The static retrieval model: :class:`StaticEmbedder` (model2vec, encoded columnar) and its
distillation from the full model, stored once per user or prebuilt."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .base import TORCH_EXTRA, _normalized, _offline, _quiet
from .full import SentenceTransformerEmbedder
from .onnx import FullModel, OnnxEmbedder

STATIC_DIMS = 128


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


def static_key(parent: FullModel) -> str:
    """The name of the static model distilled from ``parent`` (its files' hash included)."""
    return f"static{STATIC_DIMS}-{parent.key}"


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
