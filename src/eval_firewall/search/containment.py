"""Containment search: eval items quoted inside train rows of any length.

Near-duplicate and paraphrase scores compare whole rows, so a short eval item quoted inside a
long train document scores low. This search finds it by shared word n-grams, as
lm-eval-harness's 13-gram decontamination does, with three refinements:

- **every shared span is found**: train rows are scanned at every position (no sampling), so
  every span of at least ``n`` words that an eval item shares with a train row is seen;
- **short items need all of their words**: an item shorter than ``short_words`` words counts
  only when its whole normalized text appears in one train row (anchored on its first
  ``min_words`` words, then compared whole); items under ``min_words`` words are not searched
  (they are found only as exact or near copies);
- **boilerplate is not evidence**: an n-gram found in more than ``max_train_rows`` train rows
  (an instruction template, "Answer the following question"), or a short item found whole in
  more than that many, counts for nothing.

A long item is *contained* in a train row when the n-grams they share (each in at most
``max_train_rows`` train rows) cover at least ``min_coverage`` of its words.

Words are the tokens of :func:`eval_firewall.text.normalize.normalize` (case, punctuation, Unicode
compatibility forms and whitespace do not matter, so re-wrapped or re-punctuated copies match).

Two halves, so a persistent train index can store the first as more columns of a chunk:

- :func:`build` (train texts, normalized) -> ``{"tokens": uint64[], "starts": int64[]}``: each
  word's 64-bit hash, and where each row starts (CSR);
- :class:`EvalItems` (eval texts, normalized) and :func:`scan` (one chunk of those arrays) ->
  the raw hits; :func:`contained` aggregates them over every chunk into one
  :class:`Contained` per eval item. :func:`scan_stored` scans stored arrays (an index
  chunk's, memory-mapped) a bounded piece at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import mmh3
import numpy as np

BASE = np.uint64(0x100000001B3)         # the rolling hash's multiplier (odd, so invertible)
ROWS_PER_PIECE = 1 << 15                 # train rows tokenized and scanned at once, at most
CHARS_PER_PIECE = 1 << 24                # and about this many characters (a few million words)
WORDS_PER_PIECE = 1 << 22                # stored word hashes scanned at once, about
_BITMAP_BITS = 25                        # membership prefilter: at most 2**25 bits of the hash's top,
_BITMAP_SPARSITY = 256                   # at least this many per key (few keys: a bitmap in cache)
ANCHOR_ROWS = 1000                       # a short item's first words in more rows: not searched


@dataclass(frozen=True, slots=True)
class Contained:
    """One eval item found inside one train row.

    ``start``/``end`` are word positions in the train row's normalized text (end exclusive);
    ``coverage`` is the share of the eval item's words that the shared text covers (1.0 for a
    short item, which counts only whole); ``shared_words`` how many of them.
    """

    train: int
    start: int
    end: int
    coverage: float
    shared_words: int


@dataclass(frozen=True, slots=True)
class Settings:
    """The search's parameters (``audits.overlap.containment`` in the config)."""

    ngram: int = 13
    min_words: int = 8
    short_words: int = 20
    max_train_rows: int = 10
    min_coverage: float = 0.5


def _token_hashes(norm: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Every word's hash, and the CSR row starts, of normalized texts."""
    import pyarrow as pa
    import pyarrow.compute as pc

    array = norm if isinstance(norm, (pa.Array, pa.ChunkedArray)) else pa.array(
        list(norm), type=pa.large_string())
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks() if array.num_chunks else pa.array([], pa.large_string())
    tokens = pc.split_pattern(array, " ")
    lengths = pc.list_value_length(tokens).to_numpy(zero_copy_only=False).astype(np.int64)
    flat = pc.list_flatten(tokens)
    encoded = pc.dictionary_encode(flat)
    words = encoded.dictionary.to_pylist()
    table = np.fromiter((mmh3.hash64(w, 0, signed=False)[0] for w in words),
                        dtype=np.uint64, count=len(words))
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    hashes = table[codes]
    if "" in words:        # an empty text splits into one empty token: it is no word
        keep = codes != words.index("")
        rows = np.repeat(np.arange(len(lengths)), lengths)
        hashes = hashes[keep]
        lengths = np.bincount(rows[keep], minlength=len(lengths)).astype(np.int64)
    starts = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=starts[1:])
    return hashes, starts


def build(norm: Sequence[str]) -> dict[str, np.ndarray]:
    """The train side's arrays for :func:`scan`: ``tokens`` (uint64, one hash per word of every
    row, in order) and ``starts`` (int64, rows + 1: row ``j``'s words are
    ``tokens[starts[j]:starts[j + 1]]``)."""
    tokens, starts = _token_hashes(norm)
    return {"tokens": tokens, "starts": starts}


def _rolling(tokens: np.ndarray, length: int) -> np.ndarray:
    """The hash of the ``length`` words starting at each position (the last ones wrap: masked
    by the caller)."""
    out = np.zeros(len(tokens), dtype=np.uint64)
    if not len(tokens):
        return out
    with np.errstate(over="ignore"):
        for k in range(length):
            out *= BASE
            out[:len(tokens) - k] += tokens[k:]
    return out


class EvalItems:
    """The eval side: each searchable item's words and the n-grams the scan looks for."""

    def __init__(self, norm: Sequence[str], settings: Settings,
                 only: Iterable[int] | None = None) -> None:
        """Index the items ``only`` (default: all) of normalized eval texts ``norm``."""
        self.settings = settings
        hashes, starts = _token_hashes(list(norm))
        self.tokens = [hashes[starts[i]:starts[i + 1]] for i in range(len(norm))]
        wanted = range(len(norm)) if only is None else only
        n, m = settings.ngram, settings.min_words
        self.short: list[int] = []
        self.long: list[int] = []
        gram_hash, gram_item, gram_pos = [], [], []
        anchor_hash, anchor_item = [], []
        for i in wanted:
            words = self.tokens[i]
            length = len(words)
            if length < m:
                continue
            if length < settings.short_words or length < n:
                self.short.append(i)
                anchor_hash.append(_rolling(words[:m], m)[0])
                anchor_item.append(i)
            else:
                self.long.append(i)
                grams = _rolling(words, n)[:length - n + 1]
                gram_hash.append(grams)
                gram_item.append(np.full(len(grams), i, dtype=np.int64))
                gram_pos.append(np.arange(len(grams), dtype=np.int64))
        self.grams = _Table(np.concatenate(gram_hash) if gram_hash else np.zeros(0, np.uint64),
                            np.concatenate(gram_item) if gram_item else np.zeros(0, np.int64),
                            np.concatenate(gram_pos) if gram_pos else np.zeros(0, np.int64))
        self.anchors = _Table(np.asarray(anchor_hash, dtype=np.uint64),
                              np.asarray(anchor_item, dtype=np.int64),
                              np.zeros(len(anchor_item), dtype=np.int64))

    def __len__(self) -> int:
        """The number of items searched."""
        return len(self.short) + len(self.long)


class _Table:
    """The distinct n-gram hashes (sorted ``keys``), each with the eval items and positions it
    occurs at (``first``: CSR offsets into ``items``/``positions``), and a bitmap of the keys'
    top bits for a fast first test. A key may be retired (``dead``): found in too many train
    rows to be evidence."""

    def __init__(self, hashes: np.ndarray, items: np.ndarray, positions: np.ndarray) -> None:
        order = np.argsort(hashes, kind="stable")
        hashes, self.items, self.positions = hashes[order], items[order], positions[order]
        self.keys, self.first = np.unique(hashes, return_index=True)
        self.first = np.append(self.first, len(hashes)).astype(np.int64)
        bits = min(_BITMAP_BITS, max(16, int(len(self.keys) * _BITMAP_SPARSITY).bit_length()))
        self.shift = np.uint64(64 - bits)
        self.bitmap = np.zeros(1 << bits, dtype=bool)
        self.bitmap[self.keys >> self.shift] = True
        self.dead = np.zeros(len(self.keys), dtype=bool)
        self.rows = np.zeros(len(self.keys), dtype=np.int64)     # train rows holding each key

    def lookup(self, hashes: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions into ``hashes``, key index) of every live key found."""
        if not len(self.keys):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        maybe = np.flatnonzero(valid & self.bitmap[hashes >> self.shift])
        found = hashes[maybe]
        key = np.minimum(np.searchsorted(self.keys, found), len(self.keys) - 1)
        hit = (self.keys[key] == found) & ~self.dead[key]
        return maybe[hit], key[hit]

    def entries(self, key: int) -> range:
        """The entries (indices into ``items``/``positions``) of one key."""
        return range(int(self.first[key]), int(self.first[key + 1]))


class Hits:
    """Raw hits of every scanned chunk: for long items, each (key, train row) once with its
    first position in the row; short items found whole (item, train row, train position)."""

    def __init__(self) -> None:
        self.grams: list[np.ndarray] = []      # [key, row, position] rows
        self.whole: list[np.ndarray] = []      # [item, row, position] rows


def _first_per_pair(key: np.ndarray, row: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """[key, row, position] with each (key, row) once, at its first position."""
    order = np.lexsort((pos, row, key))
    key, row, pos = key[order], row[order], pos[order]
    first = np.ones(len(key), dtype=bool)
    first[1:] = (key[1:] != key[:-1]) | (row[1:] != row[:-1])
    return np.stack([key[first], row[first], pos[first]], axis=1)


def _retire(table: _Table, found: np.ndarray, limit: int) -> None:
    """Count the train rows of each key in ``found`` ([key, row, ...], each pair once) and
    retire the keys past ``limit``."""
    if len(found):
        table.rows += np.bincount(found[:, 0], minlength=len(table.keys))
        table.dead |= table.rows > limit


def scan(arrays: dict[str, np.ndarray], items: EvalItems, hits: Hits, row_offset: int = 0) -> None:
    """Look for the eval items in one chunk of train arrays (:func:`build`); rows are numbered
    from ``row_offset``. Appends to ``hits``; keys found in more than ``max_train_rows`` train
    rows so far are retired and their hits dropped, so memory stays bounded by the eval side."""
    tokens, starts = arrays["tokens"], arrays["starts"]
    if not len(tokens) or not len(items):
        return
    s = items.settings
    row_of = np.repeat(np.arange(len(starts) - 1, dtype=np.int64), np.diff(starts))
    room = starts[1:][row_of] - np.arange(len(tokens))      # words left in the row from here
    grams = items.grams
    if len(grams.keys):
        at, key = grams.lookup(_rolling(tokens, s.ngram), room >= s.ngram)
        if len(at):
            rows = row_of[at]
            found = _first_per_pair(key, rows + row_offset, at - starts[rows])
            _retire(grams, found, s.max_train_rows)
            hits.grams = [h[~grams.dead[h[:, 0]]] for h in (*hits.grams, found)]
    anchors = items.anchors
    if len(anchors.keys):
        at, key = anchors.lookup(_rolling(tokens, s.min_words), room >= s.min_words)
        if len(at):
            _retire(anchors, _first_per_pair(key, row_of[at], at), ANCHOR_ROWS)
        whole: list[tuple[int, int, int]] = []
        for pos, k in zip(at.tolist(), key.tolist()):
            if anchors.dead[k]:
                continue
            for entry in anchors.entries(k):
                item = int(anchors.items[entry])
                words = items.tokens[item]
                if room[pos] >= len(words) and np.array_equal(tokens[pos:pos + len(words)], words):
                    row = int(row_of[pos])
                    whole.append((item, row + row_offset, pos - int(starts[row])))
        if whole:
            hits.whole.append(np.asarray(whole, dtype=np.int64))


def contained(hits: Hits, items: EvalItems) -> dict[int, Contained]:
    """Each eval item's best containing train row (highest coverage, then the first row), from
    the hits of every chunk, boilerplate dropped."""
    s = items.settings
    best: dict[int, Contained] = {}

    def offer(item: int, found: Contained) -> None:
        old = best.get(item)
        if old is None or (found.coverage, -found.train) > (old.coverage, -old.train):
            best[item] = found

    for item, found in _whole_copies(hits, items):
        offer(item, found)
    runs = _gram_runs(hits, items)
    if runs is None:
        return best
    item_of, row, train_pos, eval_pos, lo, hi = runs
    lengths = np.array([len(t) for t in items.tokens], dtype=np.int64)
    need = s.min_coverage * lengths[item_of[lo]]
    for a, b, needed in zip(lo.tolist(), hi.tolist(), need.tolist()):
        if b - a + s.ngram - 1 < needed:
            continue
        item = int(item_of[a])
        length = int(lengths[item])
        covered = np.zeros(length, dtype=bool)
        for p in np.unique(eval_pos[a:b]).tolist():
            covered[p:p + s.ngram] = True
        shared = int(covered.sum())
        if shared < needed:
            continue
        start, end = _span(train_pos[a:b], eval_pos[a:b], length, s.ngram)
        offer(item, Contained(int(row[a]), start, end, shared / length, shared))
    return best


def _whole_copies(hits: Hits, items: EvalItems) -> list[tuple[int, Contained]]:
    """The short items found whole in a train row (in no more than ``max_train_rows`` rows)."""
    if not hits.whole:
        return []
    whole = np.concatenate(hits.whole)
    pairs = np.unique(whole[:, :2], axis=0)
    per_item = np.bincount(pairs[:, 0], minlength=len(items.tokens))
    out = []
    for item, row, pos in whole.tolist():
        if per_item[item] <= items.settings.max_train_rows:
            length = len(items.tokens[item])
            out.append((item, Contained(row, pos, pos + length, 1.0, length)))
    return out


def _gram_runs(hits: Hits, items: EvalItems) -> tuple[np.ndarray, ...] | None:
    """The n-gram hits that are evidence (no boilerplate), one line per (eval item, train row,
    shared n-gram), sorted by item and row: ``item, row, train position, eval position`` and
    each (item, row) run's bounds ``lo, hi``; None when there are none."""
    grams = items.grams
    found = np.concatenate(hits.grams) if hits.grams else np.zeros((0, 3), np.int64)
    found = found[~grams.dead[found[:, 0]]]
    if not len(found):
        return None
    # one line per (entry, row): each key's hits expand to the eval items holding the key
    counts = grams.first[found[:, 0] + 1] - grams.first[found[:, 0]]
    entry = np.repeat(grams.first[found[:, 0]], counts) + (
        np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts))
    row = np.repeat(found[:, 1], counts)
    train_pos = np.repeat(found[:, 2], counts)
    item_of = grams.items[entry]
    eval_pos = grams.positions[entry]
    order = np.lexsort((row, item_of))
    item_of, row, train_pos, eval_pos = item_of[order], row[order], train_pos[order], eval_pos[order]
    bounds = np.flatnonzero(np.diff(item_of) | np.diff(row)) + 1
    lo = np.concatenate(([0], bounds))
    hi = np.concatenate((bounds, [len(item_of)]))
    return item_of, row, train_pos, eval_pos, lo, hi


def _span(train_pos: np.ndarray, eval_pos: np.ndarray, length: int, n: int) -> tuple[int, int]:
    """The train words holding the item: around the alignment most hits agree on, every hit
    within one item's length of it."""
    offsets = train_pos - eval_pos
    values, counts = np.unique(offsets, return_counts=True)
    offset = int(values[np.argmax(counts)])
    near = np.abs(offsets - offset) <= length
    return int(train_pos[near].min()), int(train_pos[near].max()) + n


def _pieces(texts: Sequence[str], max_rows: int, max_chars: int) -> list[tuple[int, int]]:
    """(start, stop) of consecutive pieces of at most ``max_rows`` rows and about ``max_chars``
    characters (a longer single row is a piece of its own): the scan's arrays are per word, so
    long documents need pieces of fewer rows."""
    out, start, chars = [], 0, 0
    for j, text in enumerate(texts):
        if j > start and (j - start >= max_rows or chars + len(text) > max_chars):
            out.append((start, j))
            start, chars = j, 0
        chars += len(text)
    if start < len(texts):
        out.append((start, len(texts)))
    return out


def scan_stored(arrays: dict[str, np.ndarray], items: EvalItems, hits: Hits, row_offset: int = 0,
                piece_rows: int = ROWS_PER_PIECE, piece_words: int = WORDS_PER_PIECE,
                done: Callable[[int, int], None] | None = None) -> None:
    """:func:`scan` of stored arrays (e.g. an index chunk's, memory-mapped) a piece of at most
    ``piece_rows`` rows and about ``piece_words`` words at a time: the scan's working arrays
    are per word, so memory stays bounded by the piece, not by the chunk. ``done(lo, hi)`` is
    told each piece's words once scanned (a mapped chunk releases their pages)."""
    tokens, starts = arrays["tokens"], np.asarray(arrays["starts"], dtype=np.int64)
    rows = len(starts) - 1
    start = 0
    while start < rows:
        stop = min(rows, start + piece_rows)
        words_stop = int(np.searchsorted(starts, starts[start] + piece_words, side="right")) - 1
        stop = max(start + 1, min(stop, words_stop))         # a longer row: a piece of its own
        lo, hi = int(starts[start]), int(starts[stop])
        scan({"tokens": tokens[lo:hi], "starts": starts[start:stop + 1] - lo}, items, hits,
             row_offset + start)
        if done is not None:
            done(lo, hi)
        start = stop


def search(eval_norm: Sequence[str], train_norm: Sequence[str], settings: Settings,
           only: Iterable[int] | None = None, piece_rows: int = ROWS_PER_PIECE,
           piece_chars: int = CHARS_PER_PIECE) -> dict[int, Contained]:
    """Eval index -> its best containing train row, scanning the train rows a piece at a time
    (memory bounded by the piece, not the train set)."""
    items = EvalItems(eval_norm, settings, only)
    hits = Hits()
    if len(items):
        for start, stop in _pieces(train_norm, piece_rows, piece_chars):
            scan(build(train_norm[start:stop]), items, hits, start)
    return contained(hits, items)
