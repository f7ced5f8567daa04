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
    from eval_firewall.overlap.cached import cached_vector_index
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


# --- trust: the key, the directory, the entries ---------------------------------------------------

def test_signing_key_is_created_once_private_and_reused(tmp_path, home):
    import stat

    Cache(tmp_path / "c").put_json("ns", "k", [1])
    key = home / "cache-key"
    assert key.is_file() and len(key.read_bytes()) == 32
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    before = key.read_bytes()
    assert Cache(tmp_path / "c").get_json("ns", "k") == [1]      # the same key verifies it
    assert key.read_bytes() == before
    assert [p.name for p in home.iterdir()] == ["cache-key"]       # no temporary file left


def test_entry_signed_with_another_key_is_recomputed(tmp_path):
    stream = io.StringIO()
    Cache(tmp_path / "c", home=tmp_path / "theirs").put_json("ns", "k", {"clean": True})
    cache = Cache(tmp_path / "c", Progress(stream=stream))
    assert cache.get_json("ns", "k") is None
    assert "fails its signature check" in stream.getvalue()
    assert cache.rebuilt == 1


def test_an_entry_moved_to_another_key_is_not_trusted(tmp_path):
    cache = Cache(tmp_path)
    cache.put_json("ns", "aa1", "innocent")
    cache.put_json("ns", "bb2", "guilty")
    for suffix in (".json", ".json.sum"):
        innocent = next(tmp_path.rglob(f"aa1{suffix}"))
        next(tmp_path.rglob(f"bb2{suffix}")).write_bytes(innocent.read_bytes())
    assert Cache(tmp_path).get_json("ns", "bb2") is None
    assert Cache(tmp_path).get_json("ns", "aa1") == "innocent"


def test_key_inside_the_audited_repository_is_refused(tmp_path, monkeypatch):
    import subprocess

    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    planted = tmp_path / "keys"
    planted.mkdir()
    (planted / "cache-key").write_bytes(b"k" * 32)           # a key the pull request knows
    monkeypatch.setenv("EVAL_FIREWALL_HOME", str(planted))
    stream = io.StringIO()
    cache = Cache(tmp_path / ".eval-firewall-cache", Progress(stream=stream))
    cache.put_json("ns", "k", 1)
    assert cache.get_json("ns", "k") == 1                      # works for this run
    assert "inside the audited repository" in stream.getvalue()
    assert cache.key != b"k" * 32
    assert Cache(tmp_path / ".eval-firewall-cache").get_json("ns", "k") is None   # not the next


def test_tracked_cache_directory_is_not_used_and_left_alone(tmp_path):
    import subprocess

    def git(*args):
        return subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True,
                               text=True).stdout

    git("init", "-q")
    Cache(tmp_path / ".eval-firewall-cache").put_json("ns", "k", 1)
    git("add", "-f", ".eval-firewall-cache")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "cache")
    committed = {p: p.read_bytes() for p in (tmp_path / ".eval-firewall-cache").rglob("*")
                 if p.is_file()}
    stream = io.StringIO()
    cache = Cache(tmp_path / ".eval-firewall-cache", Progress(stream=stream))
    assert not cache.enabled
    cache.put_json("ns", "k2", 2)
    assert cache.get_json("ns", "k") is None
    (line,) = stream.getvalue().splitlines()
    assert "is not used for this run" in line and "git tracks 3 files in it" in line
    assert {p: p.read_bytes() for p in (tmp_path / ".eval-firewall-cache").rglob("*")
            if p.is_file()} == committed
    assert git("status", "--porcelain") == ""


def test_cache_directory_linked_from_the_repository_is_not_used(tmp_path):
    import subprocess

    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (repo / ".eval-firewall-cache").symlink_to(elsewhere)
    stream = io.StringIO()
    assert not Cache(repo / ".eval-firewall-cache", Progress(stream=stream)).enabled
    assert "is a symbolic link" in stream.getvalue()
    (repo / "build").symlink_to(elsewhere)
    assert not Cache(repo / "build" / "cache", Progress(stream=io.StringIO())).enabled
    assert Cache(elsewhere / "cache").enabled           # outside any repository: the user's


def test_entry_in_a_linked_directory_is_not_followed(tmp_path):
    cache = Cache(tmp_path / "c")
    cache.put_json("ns", "abc", 1)
    outside = tmp_path / "outside"
    (tmp_path / "c" / "ns" / "ab").rename(outside)
    (tmp_path / "c" / "ns" / "ab").symlink_to(outside)
    stream = io.StringIO()
    again = Cache(tmp_path / "c", Progress(stream=stream))
    assert again.get_json("ns", "abc") is None
    assert "lies in a symbolic link" in stream.getvalue()
    assert (outside / "abc.json").is_file()                   # what the link pointed to stays
    again.put_json("ns", "abc", 2)
    assert Cache(tmp_path / "c").get_json("ns", "abc") == 2
    assert not (tmp_path / "c" / "ns" / "ab").is_symlink()


def test_fifo_in_place_of_an_entry_does_not_block(tmp_path):
    import os

    cache = Cache(tmp_path)
    cache.put_json("ns", "k", 1)
    entry = next(tmp_path.rglob("k.json"))
    entry.unlink()
    os.mkfifo(entry)
    stream = io.StringIO()
    again = Cache(tmp_path, Progress(stream=stream))
    assert again.get_json("ns", "k") is None
    assert "is not a regular file" in stream.getvalue()
    again.put_json("ns", "k", 3)
    assert Cache(tmp_path).get_json("ns", "k") == 3


def test_value_over_the_limit_is_not_stored(tmp_path, monkeypatch):
    from eval_firewall import cache as cache_module

    stream = io.StringIO()
    cache = Cache(tmp_path, Progress(stream=stream))
    monkeypatch.setitem(cache_module.MAX_ENTRY_BYTES, "small", 64)
    cache.put_bytes("small", "k", b"x" * 65)
    assert cache.get_bytes("small", "k") is None
    assert "larger than the 64 bytes limit: not storing it" in stream.getvalue()
    cache.put_bytes("small", "k", b"x" * 64)
    assert cache.get_bytes("small", "k") == b"x" * 64
