"""Embedders: shapes, normalisation, determinism, agreement with the libraries, content-hash cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embed_images_helper import make_image
from vlmlab.embed import EmbeddingCache, build_embedder, embed_images, embed_texts
from vlmlab.errors import ConfigError, ModelError


def test_pixels_embedder_is_deterministic_and_normalised() -> None:
    emb = build_embedder("pixels", size=4)
    ims = [make_image((200, 0, 0)), make_image((0, 0, 200)), make_image((200, 0, 0))]
    x = emb.embed(ims)
    assert x.shape == (3, 48) and x.dtype == np.float32
    assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(x[0], x[2]) and not np.allclose(x[0], x[1])


def test_bag_of_words_similar_texts_are_closer() -> None:
    emb = build_embedder("bag-of-words")
    x = emb.embed(["what colour is it", "what colour is this", "how many shapes"])
    assert x[0] @ x[1] > x[0] @ x[2]


def test_cache_hits_skip_the_embedder_and_return_identical_rows(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "cache")
    emb = build_embedder("pixels", size=4)
    ims = [make_image((10 * i, 0, 0)) for i in range(5)]
    first = embed_images(emb, ims, cache)
    files = list((tmp_path / "cache").rglob("*.npy"))
    assert len(files) == 5

    class Exploding:
        name, modality, fingerprint = "pixels", "image", emb.fingerprint

        def embed(self, items):
            raise AssertionError("cache miss")

    again = embed_images(Exploding(), ims, cache)
    assert np.array_equal(first, again)
    no_cache = embed_images(emb, ims, None)
    assert np.array_equal(first, no_cache)
    # a copy of an image under another object (same bytes) is the same cache entry
    dup = embed_images(Exploding(), [make_image((0, 0, 0))], cache)
    assert np.array_equal(dup[0], first[0])


def test_registry_typo_and_modality_checks() -> None:
    with pytest.raises(ConfigError, match="did you mean 'pixels'"):
        build_embedder("pixel")
    with pytest.raises(ValueError, match="not texts"):
        embed_texts(build_embedder("pixels"), ["a"])


@pytest.mark.slow  # importing sentence-transformers takes ~20 s on a busy 2-core machine
def test_minilm_matches_sentence_transformers_and_ranks_paraphrases(tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    from vlmlab.embed.minilm import bundled_minilm_path

    emb = build_embedder("minilm")
    texts = ["What colour is the car?", "Which color is the automobile?", "How many people are on the beach?"]
    x = embed_texts(emb, texts, EmbeddingCache(tmp_path))
    assert x.shape == (3, 384)
    ref = SentenceTransformer(str(bundled_minilm_path()), device="cpu").encode(texts, normalize_embeddings=True)
    assert np.allclose(x, ref, atol=1e-5)
    assert x[0] @ x[1] > x[0] @ x[2]


def test_clip_embedders_match_transformers(tiny_clip: Path) -> None:
    import torch
    from transformers import AutoTokenizer, CLIPImageProcessor, CLIPModel

    text = build_embedder("clip-text", path=tiny_clip)
    image = build_embedder("clip-image", path=tiny_clip)
    t = text.embed(["what colour is the red circle", "a blue square"])
    ims = [make_image((200, 0, 0)), make_image((0, 0, 200), stripe=3)]
    i = image.embed(ims)
    assert t.shape == (2, 16) and i.shape == (2, 16)
    model = CLIPModel.from_pretrained(tiny_clip).eval()
    tok = AutoTokenizer.from_pretrained(tiny_clip)
    with torch.no_grad():
        batch = tok(["what colour is the red circle", "a blue square"], padding=True, return_tensors="pt")
        ref_t = model.get_text_features(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        ref_t = getattr(ref_t, "pooler_output", ref_t)
        px = CLIPImageProcessor.from_pretrained(tiny_clip)(images=[im.load() for im in ims], return_tensors="pt")["pixel_values"]
        ref_i = model.get_image_features(pixel_values=px)
        ref_i = getattr(ref_i, "pooler_output", ref_i)
    ref_t = torch.nn.functional.normalize(ref_t, dim=-1).numpy()
    ref_i = torch.nn.functional.normalize(ref_i, dim=-1).numpy()
    assert np.allclose(t, ref_t, atol=1e-5) and np.allclose(i, ref_i, atol=1e-5)
    # batch of one equals the row from a batch of two
    assert np.allclose(image.embed(ims[1:]), i[1:], atol=1e-5)


def test_clip_missing_folder_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not a CLIP model folder"):
        build_embedder("clip-image", path=tmp_path)
