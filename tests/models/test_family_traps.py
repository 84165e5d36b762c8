"""The known traps of #13, each held by a test that fails when `hf_encode`'s handling is removed:

- PaliGemma is a prefix-LM: prompt tokens (token type 0) attend to each other both ways, so a
  scored answer marked as prompt would be seen by the positions that predict it. The answer must
  be the causal suffix (token type 1), as PaliGemma's processor marks a `suffix`.
- Mllama's `cross_attention_mask` (token x image x tile) must cover every appended answer token,
  each seeing the images as the last prompt token does.

The reference is transformers' own incremental path: `generate()` appends token type 1 for
PaliGemma and repeats the last cross-attention row for Mllama at each new token. Forcing the
answer tokens through `generate()` gives the model's log-probabilities on that path; `score()`
must match them.

Checked by breaking `encode_conversation` by hand: with the answer's token types left at 0,
PaliGemma's first answer token moved by 0.011 nats when the second changed and the score left the
forced generation by 0.014; with zero cross-attention rows for the answer, Mllama's second answer
token left it by 0.014; with the mask not extended at all, Mllama's score raised an IndexError.
Mllama's tiny recipe opens its cross-attention gates (transformers starts them at zero, which
hid the image from the text and made these checks pass vacuously).
"""

from __future__ import annotations


import numpy as np
import pytest
import torch

from vlmlab.models.base import ScoreRequest, Turn
from vlmlab.models.hf import HFBackend
from vlmlab.models.hf_encode import collate, encode_conversation


@pytest.fixture(scope="module")
def image(colour_image_factory):
    return colour_image_factory((200, 30, 30))


def forced_generation_logprobs(backend: HFBackend, conversation: list[Turn], target: str) -> tuple[list[int], np.ndarray]:
    """(target token ids, their log-probabilities) when `model.generate` is forced to emit the reply
    segment token by token (transformers' own handling of token types and cross-attention masks)."""
    from transformers import LogitsProcessor, LogitsProcessorList

    full = encode_conversation(backend.processor, conversation, target)
    prompt = encode_conversation(backend.processor, conversation)
    assert torch.equal(full.input_ids[: full.prompt_length], prompt.input_ids)
    reply = full.input_ids[full.prompt_length:].tolist()

    class Force(LogitsProcessor):
        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
            forced = torch.full_like(scores, -float("inf"))
            forced[:, reply[input_ids.shape[1] - full.prompt_length]] = 0.0
            return forced

    batch = collate([prompt], "left", backend.pad_id)
    with torch.no_grad():
        out = backend.model.generate(**batch, max_new_tokens=len(reply), min_new_tokens=len(reply), do_sample=False,
                                     logits_processor=LogitsProcessorList([Force()]), output_logits=True,
                                     return_dict_in_generate=True, pad_token_id=backend.pad_id)
    assert out.sequences[0, full.prompt_length:].tolist() == reply
    steps = range(full.target_slice.start - full.prompt_length, full.target_slice.stop - full.prompt_length)
    ids = [reply[j] for j in steps]
    logprobs = [float(torch.log_softmax(out.logits[j][0].float(), dim=-1)[reply[j]]) for j in steps]
    return ids, np.array(logprobs)


@pytest.mark.parametrize("family", ["paligemma", "mllama"])
def test_score_equals_transformers_incremental_generation(family: str, tiny_model, image) -> None:
    backend = HFBackend(tiny_model(family))
    conversation = [Turn("user", [image, "What is it?"])]
    for target in ("red circle", "three blue squares"):
        [scored] = backend.score([ScoreRequest(id="t", conversation=conversation, target=target)])
        assert scored.status == "ok", scored.error
        ids, reference = forced_generation_logprobs(backend, conversation, target)
        assert scored.token_ids == ids and len(ids) >= 2
        np.testing.assert_allclose(scored.token_logprobs, reference, atol=1e-4)


def test_paligemma_answer_is_a_causal_suffix(tiny_model, image) -> None:
    """Changing a later answer token leaves the earlier ones' log-probabilities unchanged."""
    backend = HFBackend(tiny_model("paligemma"))
    conversation = [Turn("user", [image, "What is it?"])]
    enc = encode_conversation(backend.processor, conversation, "red circle")
    types = enc.model_inputs["token_type_ids"]
    assert types[: enc.prompt_length].eq(0).all() and types[enc.prompt_length:].eq(1).all()  # prefix, then suffix
    a, b = backend.score([ScoreRequest(id="a", conversation=conversation, target="red circle"),
                          ScoreRequest(id="b", conversation=conversation, target="red square")])
    assert a.tokens[0] == b.tokens[0] == "red" and a.token_ids[1] != b.token_ids[1]
    assert a.token_logprobs[0] == pytest.approx(b.token_logprobs[0], abs=1e-6)
    three = backend.score([ScoreRequest(id="c", conversation=conversation, target="red circle red")])[0]
    np.testing.assert_allclose(three.token_logprobs[:2], a.token_logprobs, atol=1e-6)


def test_mllama_cross_attention_mask_covers_every_appended_token(tiny_model, image) -> None:
    backend = HFBackend(tiny_model("mllama"))
    conversation = [Turn("user", ["Colour?", image, "And this one?", image])]  # two images: a token x image x tile grid
    enc = encode_conversation(backend.processor, conversation, "three blue squares")
    mask = enc.model_inputs["cross_attention_mask"]
    assert mask.shape[0] == enc.input_ids.shape[0] > enc.prompt_length  # one row per token, answer included
    last_prompt_row = mask[enc.prompt_length - 1]
    assert last_prompt_row.sum() > 0  # the last prompt token sees the images ...
    assert all(torch.equal(mask[i], last_prompt_row) for i in range(enc.prompt_length, mask.shape[0]))  # ... so does every answer token
    prompt_only = encode_conversation(backend.processor, conversation).model_inputs["cross_attention_mask"]
    assert torch.equal(mask[: enc.prompt_length], prompt_only)  # the processor's own rows for the prompt
    batch = collate([enc, encode_conversation(backend.processor, conversation, "red")], "right", backend.pad_id)
    assert batch["cross_attention_mask"].shape[:2] == batch["input_ids"].shape


def test_mllama_sees_its_image_and_batched_equals_unbatched_with_mixed_image_counts(tiny_model, colour_image_factory) -> None:
    """The tiny Mllama's cross-attention is live (scores depend on the image), and batches equal
    unbatched, also when the prompts hold different numbers of images: transformers lets text
    before the first image attend to zero-padded image slots, so the backend batches only rows with
    the same image slots (`vlmlab.models.batching`)."""
    path = tiny_model("mllama")
    images = [colour_image_factory(c) for c in [(220, 30, 30), (30, 200, 40), (40, 60, 230)]]
    reqs = [ScoreRequest(id=str(i), conversation=[Turn("user", [im, "What is the colour" + " of it" * i + "?"])], target="a red circle")
            for i, im in enumerate(images)]
    batched, single = HFBackend(path, batch_size=3).score(reqs), HFBackend(path, batch_size=1).score(reqs)
    assert float(np.max(np.abs(batched[0].token_logprobs - batched[2].token_logprobs))) > 1e-3
    for a, b in zip(batched, single):
        np.testing.assert_allclose(a.token_logprobs, b.token_logprobs, atol=1e-5)
    mixed = reqs + [ScoreRequest(id="two", conversation=[Turn("user", [images[0], images[1], "Which colour comes first?"])], target="red")]
    batched, single = HFBackend(path, batch_size=4).score(mixed), HFBackend(path, batch_size=1).score(mixed)
    for a, b in zip(batched, single):
        np.testing.assert_allclose(a.token_logprobs, b.token_logprobs, atol=1e-5)
