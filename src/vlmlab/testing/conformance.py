"""The conformance checks every family's checkpoint must pass, one function per check.

    results = run_all(Path("models/tiny"))     # check name -> "ok" / "n/a" / "refused >1" / "FAIL: ..."
    print(table({"qwen2-vl": results}))

Used by `tests/models/test_conformance_matrix.py` (one test per tiny family; the table reaches the
test run's terminal summary) and `benchmarks/bench_conformance.py` (the same table with timings,
committed as `benchmarks/results/conformance.md`); users may run it on their own checkpoint.
Each check returns "ok", "n/a" (the family does not offer the feature, e.g. no vision-feature
cache), "refused >N" (a clear refusal of more images than the family takes), or raises. Whether a
feature is offered comes from `vlmlab.models.support.checkpoint_support`, the facts
`vlmlab models list` shows, and the checks assert that the behaviour matches them.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from vlmlab.data.images import Image
from vlmlab.models.base import GenerationRequest, ScoreRequest, Turn
from vlmlab.models.hf import HFBackend
from vlmlab.models.hf_encode import collate, encode_conversation
from vlmlab.models.support import FamilySupport, checkpoint_support

CHECKS = ["load", "generate", "image matters", "batched==unbatched", "span==target", "score==loss", "lora LM-only", "vision cache",
          "multi-image"]
# Failures with a known cause outside vlmlab's encoding; the table shows them as FAIL. A fix makes
# the family's test (tests/models/test_conformance_matrix.py) fail until its entry is removed.
KNOWN_FAILURES: dict[str, dict[str, str]] = {}
COLOURS = [(220, 30, 30), (30, 200, 40), (40, 60, 230)]
TARGETS = ["red", "a green circle", "three blue squares", "7"]


def images() -> list[Image]:
    import PIL.Image

    return [Image.from_pil(PIL.Image.new("RGB", (56, 56), c)) for c in COLOURS]


def conversations(ims: list[Image], multi: bool) -> list[list[Turn]]:
    """Four prompts of differing lengths; with `multi`, two of them hold two images."""
    out = [[Turn("user", [ims[0], "What is the colour?"])],
           [Turn("user", [ims[1], "Describe it" + " please" * 3 + "."])],
           [Turn("user", [ims[2], "How many?"])],
           [Turn("user", [ims[0], "Colour?"]), Turn("assistant", "red"), Turn("user", [ims[1], "And this one?"])]]
    if multi:
        out[2] = [Turn("user", [ims[2], ims[0], "How many?"])]
    else:
        out[3] = [Turn("user", ["A question without an image first.", ims[1]])]
    return out


def check_generate(b: HFBackend, ims: list[Image]) -> str:
    reqs = [GenerationRequest(id=str(i), conversation=c, max_new_tokens=5) for i, c in enumerate(conversations(ims, False))]
    first, again = b.generate(reqs), b.generate(reqs)
    for r, r2 in zip(first, again):
        assert r.status in ("ok", "empty"), r.error
        assert r.text == r2.text and 0 <= r.generated_tokens <= 5  # greedy: deterministic
    return "ok"


def check_image_matters(b: HFBackend, ims: list[Image]) -> str:
    """The same question and answer scored with a red and with a blue image differ: the image
    reaches the text. (It did not in tiny Gemma3 and Mllama while their projector and gates kept
    transformers' zero initialisation, and every image-dependent check passed vacuously.)"""
    reqs = [ScoreRequest(id=str(i), conversation=[Turn("user", [im, "What is the colour?"])], target="a red circle")
            for i, im in enumerate([ims[0], ims[2]])]
    red, blue = b.score(reqs)
    assert red.status == blue.status == "ok", (red.error, blue.error)
    diff = float(np.max(np.abs(red.token_logprobs - blue.token_logprobs)))
    assert diff > 1e-4, f"scores with a red and a blue image differ by only {diff:.2g}"
    return "ok"


def check_batched(b: HFBackend, ims: list[Image]) -> str:
    multi = b.max_images_per_prompt is None
    convs = conversations(ims, multi)
    greqs = [GenerationRequest(id=str(i), conversation=c, max_new_tokens=4) for i, c in enumerate(convs)]
    sreqs = [ScoreRequest(id=str(i), conversation=c, target=TARGETS[i]) for i, c in enumerate(convs)]
    size = b.batch_size
    try:
        b.batch_size = 4
        gen_b, score_b = b.generate(greqs), b.score(sreqs)
        b.batch_size = 1
        gen_1, score_1 = b.generate(greqs), b.score(sreqs)
    finally:
        b.batch_size = size
    assert [r.status for r in gen_b] == [r.status for r in gen_1] and all(r.status != "error" for r in gen_b), [r.error for r in gen_b]
    assert [r.text for r in gen_b] == [r.text for r in gen_1]
    for x, y in zip(score_b, score_1):
        assert x.status == y.status == "ok", (x.error, y.error)
        assert x.token_ids == y.token_ids
        np.testing.assert_allclose(x.token_logprobs, y.token_logprobs, atol=1e-4)
    return "ok"


def check_span_and_loss(b: HFBackend, ims: list[Image]) -> tuple[str, str]:
    """(scored span decodes to the target, score equals the model's own loss on those tokens)."""
    tok = b.processor.tokenizer
    convs = conversations(ims, False)
    reqs = [ScoreRequest(id=str(i), conversation=c, target=TARGETS[i]) for i, c in enumerate(convs)]
    for req, res in zip(reqs, b.score(reqs)):
        assert res.status == "ok", res.error
        decoded = tok.decode(res.token_ids)
        assert decoded.lstrip(" ") == req.target, (decoded, req.target)  # the template may put a space before the reply
        enc = encode_conversation(b.processor, req.conversation, req.target)
        batch = collate([enc], "right", b.pad_id)
        labels = torch.full_like(batch["input_ids"], -100)
        labels[0, enc.target_slice] = enc.input_ids[enc.target_slice]
        with torch.no_grad():
            loss = float(b.model(**batch, labels=labels).loss)
        assert abs(loss + res.mean_logprob) < 1e-4, (loss, -res.mean_logprob)
    return "ok", "ok"


def check_lora(path: Path, b: HFBackend, ims: list[Image], support: FamilySupport) -> str:
    """LoRA on `lora_targets` adapts only language-model layers: after two steps the adapter
    changed, every base weight is unchanged, and no vision/projector module holds an adapter;
    as many layers as `vlmlab models list` says."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    from vlmlab.models.families import language_model_layers, lora_targets

    model = AutoModelForImageTextToText.from_pretrained(path, dtype=torch.float32)
    owner, lists = language_model_layers(model)
    pattern = lora_targets(model)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=pattern, init_lora_weights=False))
    adapted = {n.removeprefix("base_model.model.").rsplit(".lora_A", 1)[0] for n, _ in peft_model.named_parameters() if ".lora_A." in n}
    assert adapted and all(any(a.startswith(f"{owner}.{lst}." if owner else f"{lst}.") for lst in lists) for a in adapted), adapted
    text_layers = model.config.get_text_config().num_hidden_layers
    assert len(adapted) >= 4 * text_layers  # at least q/k/v/o of every decoder layer
    assert len(adapted) == support.lora_layers, (len(adapted), support.lora_layers)
    base = {n: p.detach().clone() for n, p in peft_model.named_parameters() if "lora_" not in n}
    lora = {n: p.detach().clone() for n, p in peft_model.named_parameters() if "lora_" in n}
    enc = encode_conversation(b.processor, conversations(ims, False)[0], "red")
    batch = collate([enc], "right", b.pad_id, with_labels=True)
    opt = torch.optim.SGD([p for p in peft_model.parameters() if p.requires_grad], lr=0.5)
    peft_model.train()
    for _ in range(2):
        opt.zero_grad()
        peft_model(**batch).loss.backward()
        opt.step()
    after = dict(peft_model.named_parameters())
    assert all(torch.equal(base[n], after[n]) for n in base), "a base weight changed"
    assert any(not torch.equal(lora[n], after[n]) for n in lora), "the adapter did not change"
    return "ok"


def check_vision_cache(path: Path, b: HFBackend, ims: list[Image], support: FamilySupport) -> str:
    assert b.spec.vision_cache == support.vision_cache
    if not support.vision_cache:
        return "n/a"
    plain = HFBackend(path, vision_cache=False, batch_size=4)
    convs = conversations(ims, b.max_images_per_prompt is None)
    reqs = [ScoreRequest(id=str(i), conversation=c, target=TARGETS[i]) for i, c in enumerate(convs)]
    b.clear_vision_cache()
    first, again, ref = b.score(reqs), b.score(reqs), plain.score(reqs)
    assert b.vision_cache_hits > 0 and b.vision_cache_misses > 0
    for x, y, r in zip(first, again, ref):
        np.testing.assert_allclose(x.token_logprobs, r.token_logprobs, atol=1e-5)
        np.testing.assert_allclose(y.token_logprobs, r.token_logprobs, atol=1e-5)
    greqs = [GenerationRequest(id=str(i), conversation=c, max_new_tokens=4) for i, c in enumerate(convs)]
    assert [r.text for r in b.generate(greqs)] == [r.text for r in plain.generate(greqs)]
    return "ok"


def check_multi_image(b: HFBackend, ims: list[Image], support: FamilySupport) -> str:
    assert b.max_images_per_prompt == support.max_images
    req = GenerationRequest(id="m", conversation=[Turn("user", ims[:3] + ["How many?"])], max_new_tokens=3)
    res = b.generate([req])[0]
    if support.max_images is None:
        assert res.status in ("ok", "empty"), res.error
        one = encode_conversation(b.processor, [Turn("user", [ims[0], "How many?"])]).num_image_tokens
        three = encode_conversation(b.processor, req.conversation).num_image_tokens
        assert three >= 3 * one > 0 or one == 0  # Mllama: one placeholder per image, features via cross-attention
        return "ok"
    assert res.status == "error" and f"at most {b.max_images_per_prompt} image" in res.error, res.error
    return f"refused >{b.max_images_per_prompt}"


def run_all(path: Path, on_result: Callable[[str, str], Any] | None = None,
            seconds: dict[str, float] | None = None) -> dict[str, str]:
    """Every check on one checkpoint; check name -> "ok" / "n/a" / "FAIL: ..." (never raises).

    `on_result(check, outcome)` is called after each check; `seconds`, when given, receives the
    wall-clock seconds of each.
    """
    results: dict[str, str] = {}

    def record(name: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        try:
            value = fn()
        except Exception as exc:  # noqa: BLE001 - a failed check is recorded, the others still run
            results[name] = f"FAIL: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
            return None
        finally:
            if seconds is not None:
                seconds[name] = time.perf_counter() - t0
        results[name] = value if isinstance(value, str) else "ok"
        if on_result is not None:
            on_result(name, results[name])
        return value

    ims = images()
    loaded = record("load", lambda: (HFBackend(path, batch_size=4), checkpoint_support(path)))
    if loaded is None:
        return results | {c: "skipped (load failed)" for c in CHECKS if c != "load"}
    b, support = loaded
    record("generate", lambda: check_generate(b, ims))
    record("image matters", lambda: check_image_matters(b, ims))
    record("batched==unbatched", lambda: check_batched(b, ims))
    spans = record("span==target", lambda: check_span_and_loss(b, ims))
    if spans is not None:
        results["span==target"], results["score==loss"] = spans
    else:
        results["score==loss"] = results["span==target"]
    record("lora LM-only", lambda: check_lora(path, b, ims, support))
    record("vision cache", lambda: check_vision_cache(path, b, ims, support))
    record("multi-image", lambda: check_multi_image(b, ims, support))
    return results


def header() -> str:
    """The first two lines of `table`."""
    return "| family | " + " | ".join(CHECKS) + " |\n" + "|---" * (len(CHECKS) + 1) + "|"


def row(family: str, results: dict[str, str]) -> str:
    """One family's line of `table` (a failed check shows as FAIL; its message is in `results`)."""
    cells = [results.get(c, "-") if not results.get(c, "-").startswith("FAIL") else "FAIL" for c in CHECKS]
    return f"| {family} | " + " | ".join(cells) + " |"


def table(rows: dict[str, dict[str, str]]) -> str:
    """A Markdown table: one row per family, one column per check."""
    return "\n".join([header(), *(row(family, res) for family, res in rows.items())])
