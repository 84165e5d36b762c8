"""InfoScore on real tiny architectures: the scored span is exactly the answer; caches and batch sizes
do not change beam search."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from icl_toy import data_config
from vlmlab.icl.beam import beam_search
from vlmlab.icl.data import load_split, target_answer
from vlmlab.icl.prompts import score_request


def _backend(tiny_root: Path, family: str, **options):
    from vlmlab.models.hf import HFBackend
    from vlmlab.models.tiny import tiny_model_path

    return HFBackend(tiny_model_path(family, tiny_root), dtype="float32", **options)


@pytest.mark.slow
@pytest.mark.parametrize("family", ["qwen2-vl", "qwen2.5-vl", "llava", "idefics3", "gemma3"])
def test_scored_tokens_decode_to_exactly_the_answer(tiny_root: Path, family: str, toy_support) -> None:
    backend = _backend(tiny_root, family)
    split = load_split(data_config(toy_support))
    query = split.records[2]
    for demos in ([], split.records[3:4], split.records[3:6]):
        req = score_request("r", demos, query)
        res = backend.score([req])[0]
        assert res.status == "ok", res.error
        decoded = backend.processor.tokenizer.decode(res.token_ids)
        if family.startswith("qwen"):
            assert decoded == target_answer(query)
        else:  # templates like "Assistant: {answer}": BPE merges the separating space into the first answer token
            assert decoded.lstrip() == target_answer(query) and decoded[: len(decoded) - len(decoded.lstrip())] in ("", " ")
        assert len(res.token_logprobs) == len(res.token_ids) > 0
        p = float(np.exp(res.mean_logprob))
        assert 1e-4 < p < 1.0  # a real probability of the answer, not ~1e-6 from a misplaced span


@pytest.mark.slow
def test_beam_search_equal_with_and_without_vision_cache_and_across_batch_sizes(tiny_root: Path, toy_support) -> None:
    split = load_split(data_config(toy_support))
    anchor = split.records[2]
    pool = [r for r in split.records if r.question_id != anchor.question_id][:4]
    runs = []
    for cache, backend_bs, stream_bs in [(True, 8, 16), (False, 8, 16), (True, 1, 3)]:
        backend = _backend(tiny_root, "qwen2-vl", vision_cache=cache, batch_size=backend_bs)
        runs.append(beam_search(backend, anchor, pool, beam_size=2, shots=2, batch_size=stream_bs))
    ref = runs[0]
    for other in runs[1:]:
        assert other.base_prob == pytest.approx(ref.base_prob, rel=1e-4)
        assert [b.positions for b in other.beams] == [b.positions for b in ref.beams]
        assert np.allclose([b.step_scores for b in other.beams], [b.step_scores for b in ref.beams], atol=1e-5)
    for b in ref.beams:
        assert b.cumulative == pytest.approx(b.prob - ref.base_prob, abs=1e-9)
