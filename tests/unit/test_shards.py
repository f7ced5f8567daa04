"""The train index searched shard by shard (search/shards.py): each scan's per-shard answers,
merged, are what one search over all rows gives (the local executor here; the Ray one runs
the same functions: tests/integration/test_remote.py)."""

from __future__ import annotations

import numpy as np
import pytest

from eval_firewall.search import containment, shards
from eval_firewall.search.vectors import VectorIndex


class ArrayShard:
    """A stand-in for an index chunk: named arrays and a row count (what the shard functions
    read of a chunk)."""

    def __init__(self, arrays: dict[str, np.ndarray], rows: int) -> None:
        self.arrays, self.rows = arrays, rows

    def array(self, name: str) -> np.ndarray:
        return self.arrays[name]

    def has(self, name: str) -> bool:
        return name in self.arrays


def split(n: int, sizes: list[int]) -> list[tuple[int, int]]:
    edges = np.cumsum([0, *sizes])
    assert edges[-1] == n
    return list(zip(edges[:-1].tolist(), edges[1:].tolist()))


@pytest.mark.parametrize("threshold", [0.6, 0.9])
def test_sharded_vector_search_equals_one_search(threshold: float) -> None:
    rng = np.random.default_rng(3)
    base = rng.standard_normal((300, 32)).astype(np.float32) + 1.0
    rows = base[rng.integers(0, len(base), 20_000)] + 0.1 * rng.standard_normal((20_000, 32))
    rows[5000:5010] = rows[20]             # equal rows in different shards: ties by row number
    rows[19_000:19_004] = rows[20]
    rows = (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float16)
    queries = rows[rng.integers(0, len(rows), 600)].astype(np.float32)
    queries += 0.05 * rng.standard_normal(queries.shape).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    whole = VectorIndex(rows, storage=np.float16).search_above(queries, threshold, 12)
    parts = [ArrayShard({"v": rows[a:b]}, b - a) for a, b in split(len(rows), [17_000, 5, 0, 2_995])]
    index = shards.ShardedVectorIndex(parts, "v", 32, shards.LocalExecutor())
    found = index.search_above(queries, threshold, 12)
    assert (found[0] >= 0).sum() > 3000          # the search finds plenty
    np.testing.assert_array_equal(found[0], whole[0])
    np.testing.assert_array_equal(found[1], whole[1])
    picked = [7, 5003, 19_001, 17_002, 16_999]
    np.testing.assert_array_equal(index.vectors[picked], rows[picked])
    assert len(index) == len(rows)


def sequential(eval_norm, train_norm, sizes, settings):
    """One scan of every shard in turn, sharing the eval state (the pre-shards code)."""
    items = containment.EvalItems(eval_norm, settings)
    hits = containment.Hits()
    for a, b in split(len(train_norm), sizes):
        containment.scan_stored(containment.build(train_norm[a:b]), items, hits, a)
    return containment.contained(hits, items)


def sharded(eval_norm, train_norm, sizes, settings):
    items = containment.EvalItems(eval_norm, settings)
    parts = split(len(train_norm), sizes)
    answers = [shards.scan_shard(containment.build(train_norm[a:b]), items) for a, b in parts]
    offsets = [a for a, _ in parts] + [len(train_norm)]
    told: list[int] = []
    found = shards.merge_containment(answers, items, offsets, told.append)
    assert told == sizes
    return found


def test_sharded_containment_equals_one_scan_in_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    """Boilerplate n-grams counted over all shards; short items whose first words pass the
    anchor limit part-way: the copies found before it count, as in one scan in turn."""
    monkeypatch.setattr(containment, "ANCHOR_ROWS", 4)
    settings = containment.Settings(ngram=5, min_words=3, short_words=8, max_train_rows=3,
                                    min_coverage=0.5)
    long_item = "the train left the station at nine and reached the city by noon every day"
    boiler = "please answer the following question carefully and show all of your work"
    short = "how many apples remain"
    rare_short = "what is seven times eight"
    train = [f"row {j} filler words here" for j in range(60)]
    train[3] = f"intro {long_item} outro"           # a copy, in shard 0
    train[41] = f"more {long_item}"                  # and in shard 2 (first row wins)
    for j in (2, 17, 33, 50, 58):                    # boilerplate: in 5 rows over shards
        train[j] = f"{boiler} then something {j}"
    for j in (5, 9, 22, 44, 45, 51, 55):             # the short item's first words: 7 rows,
        train[j] = f"so how many apples remain now {j}" if j in (9, 45, 51, 55) else \
            f"how many apples were there {j}"        # the item whole in 4 (3 past the limit)
    train[30] = f"quiz {rare_short} please"
    evals = [long_item, f"{boiler} now", short, rare_short, "nothing like any train row at all"]
    sizes = [20, 0, 25, 15]
    want = sequential(evals, train, sizes, settings)
    assert want[0].train == 3 and 1 not in want and want[3].train == 30
    assert want[2].train == 9                 # found before its first words passed the limit
    assert sharded(evals, train, sizes, settings) == want
    for other in ([60], [10, 10, 10, 10, 10, 10], [1, 59]):
        assert sharded(evals, train, other, settings) == sequential(evals, train, other, settings)


def test_executors_map_in_shard_order() -> None:
    with shards.open_executor("local") as runner:
        assert list(runner.map(lambda s, add: s + add, [3, 1, 2], 10)) == [13, 11, 12]
