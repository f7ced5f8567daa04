"""The content-addressed cache: hits, misses, and corrupt or stale entries rebuilt, never trusted."""

from __future__ import annotations

import io

import numpy as np
import pytest

from eval_firewall.cache import FORMAT, Cache, CachedEmbedder, content_key
from eval_firewall.progress import Progress


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    """The per-user directory (the signing key's) of each test, outside its cache directory."""
    path = tmp_path.parent / f"{tmp_path.name}-home"
    monkeypatch.setenv("EVAL_FIREWALL_HOME", str(path))
    return path


class CountingEmbedder:
    """A deterministic embedder that records what it was asked to encode."""

    key = "counting-v1"
    dim = 8

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def encode(self, texts):
        self.calls.append(list(texts))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            out[i, len(text) % self.dim] = 1.0
            out[i, (sum(map(ord, text))) % self.dim] += 0.5
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_arrays_round_trip(tmp_path):
    cache = Cache(tmp_path)
    key = content_key("x", 1)
    assert cache.get_arrays("ns", key) is None
    cache.put_arrays("ns", key, a=np.arange(5), b=np.eye(2, dtype=np.float32))
    got = Cache(tmp_path).get_arrays("ns", key)
    assert got["a"].tolist() == [0, 1, 2, 3, 4]
    assert got["b"].dtype == np.float32


def test_corrupt_entry_is_detected_deleted_and_reported(tmp_path):
    stream = io.StringIO()
    cache = Cache(tmp_path, Progress(stream=stream))
    cache.put_arrays("ns", "k1", a=np.arange(1000))
    (entry,) = list((tmp_path / "ns").rglob("k1.npz"))
    data = bytearray(entry.read_bytes())
    data[len(data) // 2] ^= 0xFF
    entry.write_bytes(bytes(data))
    assert cache.get_arrays("ns", "k1") is None
    assert not entry.exists()
    assert "fails its signature check" in stream.getvalue()
    assert cache.rebuilt == 1


def test_entry_of_another_format_is_not_trusted(tmp_path):
    cache = Cache(tmp_path)
    cache.put_json("ns", "k", {"v": 1})
    (summary,) = list((tmp_path / "ns").rglob("k.json.sum"))
    summary.write_text(summary.read_text().replace(FORMAT, "eval-firewall-cache/1"))
    assert cache.get_json("ns", "k") is None


def test_missing_checksum_is_not_trusted(tmp_path):
    cache = Cache(tmp_path)
    cache.put_json("ns", "k", [1, 2])
    next((tmp_path / "ns").rglob("k.json.sum")).unlink()
    assert cache.get_json("ns", "k") is None


def test_disabled_cache_stores_nothing(tmp_path):
    cache = Cache(None)
    cache.put_json("ns", "k", 1)
    assert cache.get_json("ns", "k") is None


def test_cached_embedder_encodes_each_text_once_across_runs(tmp_path):
    inner = CountingEmbedder()
    first = CachedEmbedder(inner, Cache(tmp_path)).encode(["a", "bb", "a", "ccc"])
    assert inner.calls == [["a", "bb", "ccc"]]
    assert np.allclose(first, inner.encode(["a", "bb", "a", "ccc"]))
    inner.calls.clear()
    again = CachedEmbedder(inner, Cache(tmp_path))
    second = again.encode(["ccc", "dddd", "a"])
    assert inner.calls == [["dddd"]]
    assert np.allclose(second, inner.encode(["ccc", "dddd", "a"]))


def test_cached_embedder_recomputes_after_corruption(tmp_path):
    inner = CountingEmbedder()
    CachedEmbedder(inner, Cache(tmp_path)).encode(["one", "two"])
    for shard in (tmp_path / "embeddings").rglob("*.npz"):
        shard.write_bytes(b"garbage")
    inner.calls.clear()
    vectors = CachedEmbedder(inner, Cache(tmp_path)).encode(["one", "two"])
    assert inner.calls == [["one", "two"]]
    assert vectors.shape == (2, 8)


def test_content_keys_do_not_collide_on_concatenation():
    keys = {content_key("a", "b"), content_key("ab"), content_key("a", "", "b"), content_key("ab", "")}
    assert len(keys) == 4
    assert content_key("a", "b") == content_key("a", "b")


def test_cache_directory_keeps_itself_out_of_git(tmp_path):
    import subprocess

    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    Cache(tmp_path / ".eval-firewall-cache").put_json("ns", "k", 1)
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"],
                            cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert status == ""


def test_train_vector_index_is_built_once_per_train_set(tmp_path):
    from eval_firewall.incremental import cached_vector_index
    from eval_firewall.search.vectors import VectorIndex

    built = []

    def build(texts, retriever):
        built.append(list(texts))
        return VectorIndex(retriever.encode(texts))

    retriever = CountingEmbedder()
    cached = cached_vector_index(Cache(tmp_path), build)
    first = cached(["a", "bb", "ccc"], retriever)
    again = cached(["a", "bb", "ccc"], retriever)
    assert built == [["a", "bb", "ccc"]]
    assert np.allclose(first.vectors, again.vectors)
    cached(["a", "bb"], retriever)
    assert len(built) == 2                      # another train set is another index


def test_cheap_embedder_skips_the_cache_for_small_batches(tmp_path):
    inner = CountingEmbedder()
    small = CachedEmbedder(inner, Cache(tmp_path), direct_below=3)
    small.encode(["a", "b"])
    assert not list(tmp_path.rglob("*.npz"))            # nothing stored for a small batch
    small.encode(["a", "b", "c"])
    assert len(list(tmp_path.rglob("*.npz"))) == 1      # a large one is cached
    inner.calls.clear()
    again = CachedEmbedder(inner, Cache(tmp_path), direct_below=3)
    again.encode(["a", "b", "c", "d"])
    assert inner.calls == [["d"]]
