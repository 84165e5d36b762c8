"""IDEFICS (Flamingo): its processor takes interleaved prompts, and vlmlab's encoding of a
conversation is exactly what that processor makes of the same interleaved prompt.

The reference is the IDEFICS processor itself, called the way its documentation shows
(`processor(text=[["User:", image, "What is it?..."]])`) on the full text of prompt plus reply;
vlmlab renders the chat template, splits it at the image placeholders and appends the reply tokens.
"""

from __future__ import annotations

from pathlib import Path

import PIL.Image
import pytest
import torch

from vlmlab.data.images import Image
from vlmlab.models.base import ScoreRequest, Turn
from vlmlab.models.families import takes_interleaved_prompts
from vlmlab.models.hf import HFBackend
from vlmlab.models.hf_encode import encode_conversation
from vlmlab.models.processor import load_processor

EOU = "<end_of_utterance>"


@pytest.fixture(scope="module")
def idefics(tiny_model) -> Path:
    return tiny_model("idefics")


def _pil(colour: tuple[int, int, int]) -> PIL.Image.Image:
    return PIL.Image.new("RGB", (56, 56), colour)


def test_only_the_idefics_processor_takes_interleaved_prompts(idefics: Path, tiny_model) -> None:
    assert takes_interleaved_prompts(load_processor(idefics))
    assert not takes_interleaved_prompts(load_processor(tiny_model("idefics2")))  # same tokens, chat-text processor
    backend = HFBackend(idefics)
    assert backend.spec.interleaved and backend.spec.derived["prompt format"] == "checkpoint"
    assert backend.max_images_per_prompt is None and not backend.spec.vision_cache


def test_lora_adapts_the_gated_cross_attention_layers_not_the_vision_tower(idefics: Path) -> None:
    """The decision documented in `families`: gated cross-attention layers belong to the language model."""
    import re

    from vlmlab.models.families import lora_targets

    model = HFBackend(idefics).model
    pattern = re.compile(lora_targets(model))
    adapted = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and pattern.fullmatch(n)]
    assert any(".gated_cross_attn_layers.0.cross_attn.k_proj" in n for n in adapted)
    assert any(".layers.0.self_attn.q_proj" in n for n in adapted)
    assert not [n for n in adapted if "vision" in n or "perceiver" in n or "lm_head" in n]


def test_encoding_equals_the_processor_on_the_interleaved_prompt(idefics: Path) -> None:
    proc = load_processor(idefics)
    red, blue = _pil((220, 30, 30)), _pil((40, 60, 230))
    conv = [Turn("user", [Image.from_pil(red), "Colour?"]), Turn("assistant", "red"),
            Turn("user", ["And", Image.from_pil(blue), Image.from_pil(red), "these?"])]
    enc = encode_conversation(proc, conv, "blue")
    ref = proc(text=[["User:", red, f"Colour?{EOU}\nAssistant: red{EOU}\nUser: And", blue, red,
                      f"these?{EOU}\nAssistant: blue{EOU}\n"]], return_tensors="pt")
    assert enc.input_ids.tolist() == ref["input_ids"][0].tolist()
    assert torch.equal(enc.model_inputs["image_attention_mask"], ref["image_attention_mask"][0])
    assert torch.equal(enc.model_inputs["pixel_values"], ref["pixel_values"])
    assert enc.num_image_tokens == 3
    assert proc.tokenizer.decode(enc.input_ids[enc.target_slice]).strip() == "blue"
    # Flamingo: each token sees the latest image before it; the reply sees the last (red) one
    mask = enc.model_inputs["image_attention_mask"]
    assert mask[enc.target_slice].tolist() == [[0, 0, 1]] * len(enc.input_ids[enc.target_slice])
    assert mask[0].tolist() == [0, 0, 0]  # <s> comes before every image


def test_the_images_reach_the_model(idefics: Path) -> None:
    """Scores differ by image: the gated cross-attention layers are live, and each prompt's image
    is the one its tokens attend to."""
    backend = HFBackend(idefics, batch_size=2)
    reqs = [ScoreRequest(id=str(i), conversation=[Turn("user", [Image.from_pil(_pil(c)), "What is the colour?"])],
                         target="red") for i, c in enumerate([(220, 30, 30), (40, 60, 230)])]
    a, b = backend.score(reqs)
    assert a.status == b.status == "ok"
    assert abs(a.mean_logprob - b.mean_logprob) > 1e-3


def test_cli_tiny_idefics_then_check(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from vlmlab.cli import app

    runner = CliRunner()
    built = runner.invoke(app, ["models", "tiny", "idefics", "--out", str(tmp_path / "f")])
    assert built.exit_code == 0, built.output
    checked = runner.invoke(app, ["models", "check", str(tmp_path / "f")], env={"COLUMNS": "200"})
    assert checked.exit_code == 0, checked.output
    assert "idefics" in checked.output and "generate_status" in checked.output
