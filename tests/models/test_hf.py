"""The `hf` backend on tiny real checkpoints of every family: generate, score, batching, caches."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch

from vlmlab.data.images import Image
from vlmlab.models.base import GenerationRequest, ScoreRequest, Turn
from vlmlab.models.hf import HFBackend
from vlmlab.models.hf_encode import collate, encode_conversation

FAMILIES = ["qwen2-vl", "qwen2.5-vl", "llava", "idefics3", "gemma3", "internvl", "blip2"]
CACHED = ["qwen2-vl", "qwen2.5-vl", "llava", "gemma3"]
_MAX_IMAGES: dict[str, int | None] = {}  # family -> the loaded backend's max_images_per_prompt
COLOURS = [(220, 30, 30), (30, 200, 40), (40, 60, 230), (240, 220, 20)]
TARGETS = ["red", "a green circle", "three blue squares", "7"]


@pytest.fixture(scope="module")
def backend(tiny_model: Callable[..., Path]) -> Callable[..., HFBackend]:
    made: dict[tuple, HFBackend] = {}

    def get(family: str, **options: Any) -> HFBackend:
        key = (family, tuple(sorted(options.items())))
        if key not in made:
            made[key] = HFBackend(tiny_model(family), **options)
            _MAX_IMAGES[family] = made[key].max_images_per_prompt
        return made[key]

    return get


@pytest.fixture(scope="module")
def images(colour_image_factory) -> list[Image]:
    return [colour_image_factory(c) for c in COLOURS]


def max_images(family: str) -> int:
    return _MAX_IMAGES[family] or 4


def convs(images: list[Image], n: int = 8, family: str = "qwen2-vl") -> list[list[Turn]]:
    """n varied conversations: 0-3 images, differing lengths, some with a demonstration turn.

    Single-image families (BLIP-2) get exactly one image per conversation and no demonstrations.
    """
    single = max_images(family) == 1
    out = []
    for i in range(n):
        k = 1 if single else i % 4
        content: list[Any] = [images[(i + j) % 4] for j in range(k)] + ["What is the colour" + " of it" * (i % 3) + "?"]
        conv = [Turn("user", content)]
        if i % 3 == 2 and not single:
            conv = [Turn("user", [images[0], "What is the colour?"]), Turn("assistant", "red")] + conv
        out.append(conv)
    return out


@pytest.mark.parametrize("family", FAMILIES)
def test_generate_with_one_and_three_images(family: str, backend, images) -> None:
    b = backend(family)
    per_image = encode_conversation(b.processor, [Turn("user", [images[0], "x"])]).num_image_tokens
    reqs = [
        GenerationRequest(id="one", conversation=[Turn("user", [images[0], "What is the colour?"])], max_new_tokens=6),
        GenerationRequest(id="three", conversation=[Turn("user", images[:3] + ["How many?"])], max_new_tokens=6),
    ]
    res = b.generate(reqs)
    assert [r.id for r in res] == ["one", "three"]
    if max_images(family) == 1:
        assert res[1].status == "error" and "at most 1 image" in res[1].error
        res = res[:1]
    for r in res:
        assert r.status in ("ok", "empty"), r.error
        assert r.status == ("ok" if r.text.strip() else "empty")
        assert 0 <= r.generated_tokens <= 6
    assert per_image > 0
    if max_images(family) == 1:
        return
    enc3 = encode_conversation(b.processor, reqs[1].conversation)
    assert enc3.num_image_tokens == 3 * per_image
    assert res[1].prompt_tokens == enc3.input_ids.shape[0]


@pytest.mark.parametrize("family", FAMILIES)
def test_batched_equals_unbatched_greedy(family: str, backend, images) -> None:
    batched_backend = backend(family, batch_size=8)  # first: convs() reads its max_images_per_prompt (xdist may run this test alone)
    reqs = [GenerationRequest(id=f"r{i}", conversation=c, max_new_tokens=5, top_logprobs=2) for i, c in enumerate(convs(images, 8, family))]
    batched = batched_backend.generate(reqs)
    single = backend(family, batch_size=1, vision_cache=False).generate(reqs)
    for a, s in zip(batched, single):
        assert a.status != "error", a.error
        assert a.text == s.text
        assert [x.token_id for x in a.logprobs] == [x.token_id for x in s.logprobs]
        np.testing.assert_allclose([x.logprob for x in a.logprobs], [x.logprob for x in s.logprobs], atol=1e-4)


@pytest.mark.parametrize("family", FAMILIES)
def test_score_span_is_the_target_and_equals_model_loss(family: str, backend, images) -> None:
    b = backend(family, vision_cache=False)
    tok = b.processor.tokenizer
    conversations = convs(images, 4, family)
    reqs = [ScoreRequest(id=f"s{i}", conversation=c, target=TARGETS[i]) for i, c in enumerate(conversations)]
    results = b.score(reqs)
    for req, res in zip(reqs, results):
        assert res.status == "ok", res.error
        # decodes to the target, up to the space the template puts before the reply (LLaVA, Idefics3)
        decoded = tok.decode(res.token_ids)
        assert decoded.lstrip(" ") == req.target
        assert "".join(res.tokens).lstrip(" ") == req.target
        enc = encode_conversation(b.processor, req.conversation, req.target)
        batch = collate([enc], "right", b.pad_id)
        labels = torch.full_like(batch["input_ids"], -100)
        labels[0, enc.target_slice] = enc.input_ids[enc.target_slice]
        with torch.no_grad():
            loss = b.model(**batch, labels=labels).loss
        assert float(loss) == pytest.approx(-res.mean_logprob, abs=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_training_prefix_is_the_inference_prompt(family: str, backend, images) -> None:
    proc = backend(family).processor
    for conv, target in zip(convs(images, 4, family), TARGETS):
        prompt = encode_conversation(proc, conv)
        full = encode_conversation(proc, conv, target)
        assert full.prompt_length == prompt.input_ids.shape[0]
        assert torch.equal(full.input_ids[: full.prompt_length], prompt.input_ids)
        assert full.target_slice.start >= full.prompt_length
        # labels cover the target and the end-of-turn token, nothing of the prompt
        labels = full.labels()
        assert (labels[: full.target_slice.start] == -100).all()
        end_tok = proc.tokenizer.decode(full.input_ids[full.target_slice.stop : full.label_slice.stop])
        assert full.label_slice.stop > full.target_slice.stop and end_tok.strip()


@pytest.mark.parametrize("family", CACHED)
def test_vision_cache_equals_uncached(family: str, backend, images) -> None:
    cached = backend(family, vision_cache=True, batch_size=4)
    plain = backend(family, vision_cache=False, batch_size=4)
    reqs = [ScoreRequest(id=f"s{i}", conversation=c, target=TARGETS[i % 4]) for i, c in enumerate(convs(images, 8, family))]
    cached.clear_vision_cache()
    first = cached.score(reqs)
    again = cached.score(reqs)  # all hits now
    ref = plain.score(reqs)
    assert cached.vision_cache_hits > 0
    for a, b2, r in zip(first, again, ref):
        np.testing.assert_allclose(a.token_logprobs, r.token_logprobs, atol=1e-5)
        np.testing.assert_allclose(b2.token_logprobs, r.token_logprobs, atol=1e-5)
    greqs = [GenerationRequest(id=f"g{i}", conversation=c, max_new_tokens=4) for i, c in enumerate(convs(images, 4, family))]
    assert [r.text for r in cached.generate(greqs)] == [r.text for r in plain.generate(greqs)]


@pytest.mark.parametrize("family", FAMILIES)
def test_hidden_states_have_documented_shapes(family: str, backend, images) -> None:
    b = backend(family)
    hidden = b.model.config.get_text_config().hidden_size
    n_layers = b.model.config.get_text_config().num_hidden_layers
    conv = [Turn("user", [images[1], "What is the colour?"])]
    for pool in ("image", "text", "last"):
        r = b.generate([GenerationRequest(id=pool, conversation=conv, max_new_tokens=2, hidden_layers=(0, 2, -1), hidden_pool=pool)])[0]
        assert r.status != "error", r.error
        assert set(r.hidden_states) == {0, 2, -1}
        for v in r.hidden_states.values():
            assert v.shape == (hidden,) and v.dtype == np.float32 and np.isfinite(v).all()
    bad = b.generate([GenerationRequest(id="x", conversation=conv, max_new_tokens=1, hidden_layers=(n_layers + 5,))])[0]
    assert bad.status == "error" and "out of range" in bad.error
    noimg = b.generate([GenerationRequest(id="y", conversation=[Turn("user", "hi")], max_new_tokens=1, hidden_layers=(0,), hidden_pool="image")])[0]
    assert noimg.status == "error" and ("no image tokens" in noimg.error or "at least 1" in noimg.error)


@pytest.mark.parametrize("family", ["qwen2-vl", "llava"])
def test_save_load_round_trip_gives_identical_logits(family: str, tiny_model, images, tmp_path: Path) -> None:
    from transformers import AutoModelForImageTextToText

    from vlmlab.models.processor import load_processor

    path = tiny_model(family)
    proc = load_processor(path)
    model = AutoModelForImageTextToText.from_pretrained(path).eval()
    batch = collate([encode_conversation(proc, [Turn("user", [images[2], "What?"])], "blue")], "right", proc.tokenizer.pad_token_id)
    model.save_pretrained(tmp_path / "copy")
    proc.save_pretrained(tmp_path / "copy")
    again = AutoModelForImageTextToText.from_pretrained(tmp_path / "copy").eval()
    proc2 = load_processor(tmp_path / "copy")
    batch2 = collate([encode_conversation(proc2, [Turn("user", [images[2], "What?"])], "blue")], "right", proc2.tokenizer.pad_token_id)
    with torch.no_grad():
        a, b = model(**batch).logits, again(**batch2).logits
    assert torch.equal(a, b)


def test_bad_item_is_an_error_not_a_crash(backend, images, tmp_path: Path) -> None:
    b = backend("qwen2-vl")
    missing = Image(path=tmp_path / "nope.png")
    corrupt_path = tmp_path / "bad.png"
    corrupt_path.write_bytes(b"not a png")
    reqs = [
        GenerationRequest(id="ok", conversation=[Turn("user", [images[0], "Colour?"])], max_new_tokens=3),
        GenerationRequest(id="missing", conversation=[Turn("user", [missing, "Colour?"])], max_new_tokens=3),
        GenerationRequest(id="corrupt", conversation=[Turn("user", [Image(path=corrupt_path), "Colour?"])], max_new_tokens=3),
    ]
    res = b.generate(reqs)
    assert res[0].status != "error"
    assert res[1].status == "error" and "nope.png" in res[1].error
    assert res[2].status == "error" and "bad.png" in res[2].error
    sres = b.score([ScoreRequest(id="m", conversation=reqs[1].conversation, target="red"),
                    ScoreRequest(id="o", conversation=reqs[0].conversation, target="red")])
    assert sres[0].status == "error" and sres[1].status == "ok"


def test_max_length_is_an_error_never_a_truncation(tiny_qwen2_vl: Path, images) -> None:
    b = HFBackend(tiny_qwen2_vl, max_length=20)
    r = b.generate([GenerationRequest(id="long", conversation=[Turn("user", images[:3] + ["What?"])], max_new_tokens=2)])[0]
    assert r.status == "error" and "max_length=20" in r.error and "image tokens" in r.error


def test_sampling_is_seeded_per_request_and_independent_of_batching(backend, images) -> None:
    conv = [Turn("user", [images[0], "Describe it."])]
    other = [Turn("user", [images[1], images[2], "And these?"])]
    mk = lambda i, seed, c=conv, t=1.5: GenerationRequest(id=str(i), conversation=c, temperature=t, seed=seed, max_new_tokens=12)
    reqs = [mk(0, 1), mk(1, 1), mk(2, 2), mk(3, 3), mk(4, 1, other), mk(5, None, other, 0.0)]
    batched = backend("qwen2-vl", batch_size=8).generate(reqs)
    single = backend("qwen2-vl", batch_size=1, vision_cache=False).generate(reqs)
    assert batched[0].text == batched[1].text
    assert len({batched[0].text, batched[2].text, batched[3].text}) > 1
    assert [r.text for r in batched] == [r.text for r in single]
    greedy = backend("qwen2-vl").generate([mk(9, 5, other, 0.0)])[0]
    assert greedy.text == batched[5].text  # a greedy row is unaffected by sampling rows beside it


def test_processed_logprobs_are_the_sampled_distribution(tiny_qwen2_vl: Path, images) -> None:
    raw = HFBackend(tiny_qwen2_vl)
    processed = HFBackend(tiny_qwen2_vl, logprob_source="processed")
    conv = [Turn("user", [images[0], "Describe it."])]
    req = GenerationRequest(id="p", conversation=conv, temperature=0.5, seed=3, max_new_tokens=4, top_logprobs=3)
    r, p = raw.generate([req])[0], processed.generate([req])[0]
    assert r.text == p.text and r.logprob_source == "raw" and p.logprob_source == "processed"
    # temperature 0.5 sharpens the distribution: the best alternative gets more mass than raw
    for rs, ps in zip(r.logprobs, p.logprobs):
        assert rs.top_ids[0] == ps.top_ids[0]
        assert ps.top[0][1] >= rs.top[0][1]
        assert np.exp([lp for _, lp in ps.top]).sum() <= 1 + 1e-6


def test_logprobs_are_raw_and_consistent_with_greedy(backend, images) -> None:
    b = backend("qwen2-vl")
    r = b.generate([GenerationRequest(id="lp", conversation=[Turn("user", [images[3], "Colour?"])], max_new_tokens=4, top_logprobs=5)])[0]
    assert r.logprob_source == "raw"
    assert r.logprobs is not None and len(r.logprobs) == r.generated_tokens
    for step in r.logprobs:
        assert len(step.top) == 5 and step.top_ids[0] == step.token_id  # greedy picks the argmax
        assert step.logprob == pytest.approx(step.top[0][1])
        assert all(a[1] >= b2[1] for a, b2 in zip(step.top, step.top[1:]))


def test_quantization_without_bitsandbytes_is_a_clear_error(tiny_qwen2_vl: Path) -> None:
    import importlib.util

    from vlmlab.errors import ModelError

    if importlib.util.find_spec("bitsandbytes") is not None:
        pytest.skip("bitsandbytes is installed")
    with pytest.raises(ModelError, match="bitsandbytes"):
        HFBackend(tiny_qwen2_vl, quantization="4bit")


def test_lora_adapter_loads(tiny_qwen2_vl: Path, images, tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(tiny_qwen2_vl)
    torch.manual_seed(0)
    peft_model = get_peft_model(model, LoraConfig(r=4, target_modules=r".*language_model.*\.(q_proj|v_proj)", init_lora_weights=False))
    peft_model.save_pretrained(tmp_path / "adapter")
    base = HFBackend(tiny_qwen2_vl)
    adapted = HFBackend(tiny_qwen2_vl, adapter=tmp_path / "adapter")
    req = [ScoreRequest(id="a", conversation=[Turn("user", [images[0], "Colour?"])], target="red")]
    assert not np.allclose(base.score(req)[0].token_logprobs, adapted.score(req)[0].token_logprobs)
