"""The `hf` backend: any Hugging Face `AutoModelForImageTextToText` checkpoint, local or cached.

    backend = HFBackend("/path/to/checkpoint", dtype="bfloat16", batch_size=8)
    results = backend.generate([GenerationRequest(id="q1", conversation=[Turn("user", [img, "Colour?"])])])
    scores = backend.score([ScoreRequest(id="q1", conversation=..., target="red")])

Generation:
- requests are batched (left padding) whatever their decoding options; batched output equals
  unbatched output. `temperature == 0` is greedy; `temperature > 0` samples (after top-p) from
  the request's own `torch.Generator` seeded with its `seed` (None = 0), so the same seed gives
  the same text, different seeds differ, and batching does not change a request's draws.
- `top_logprobs=k` returns per step the chosen token's logprob and the k best alternatives.
  `logprob_source` is "raw" by default: log-softmax of the model's logits, before temperature and
  top-p; construct with `logprob_source="processed"` for the distribution actually sampled from.
- `hidden_layers` returns hidden states of the prompt, from HF's `hidden_states` tuple
  (index 0 = embedding output, i = output of decoder layer i, negative counts from the end), each
  mean-pooled per `hidden_pool` into a float32 vector of shape (hidden_size,): "image" = over the
  image tokens (a prompt without images is an error for that item), "text" = over the other
  prompt tokens, "last" = the last prompt token (the one that predicts the first new token).
- A prompt longer than `max_length` is an error for that item (never truncated: truncation would
  cut image tokens). Any per-item problem (missing image, ...) is `status="error"`, not a crash.

Scoring: `encode_conversation` locates the target tokens; the batch is right-padded; the
log-probabilities are log-softmax(logits) in float32 at the positions before each target token,
so `-mean(token_logprobs)` equals the model's own cross-entropy loss on that span.

Vision-feature cache (`vision_cache=True`; families whose registry entry has a `vision_cache`
kind: Qwen2-VL, Qwen2.5-VL, LLaVA, Gemma3): each image's features are computed once per content
hash (LRU, `vision_cache_size` images) and passed to the model via `mm_encoder_outputs` instead
of pixel values; results equal the uncached path within 1e-5 (tested), since these vision towers
see each image independently. `vision_cache_hits`/`vision_cache_misses` count its use.

Image-input cache (`image_input_cache=True`, score path only, same families): each image is
decoded and run through the image processor once per content hash (LRU, `image_input_cache_size`
images); see `hf_encode.ImageInputCache`. Scores equal the uncached path exactly (tested).

Throughput options (all results equal to the plain path; see docs/performance.md):
- `prefix_sharing` (score): rows of a batch that share a prompt prefix (ICL beams with
  `order: right`) run it through the decoder once; `prefix_stats` counts the tokens run and saved.
  None (default): on for float32 models, where scores equal the unshared path to 1e-5 (tested);
  off in half precision or quantized, where they differ by rounding (bf16: up to ~2e-3 in a
  log-prob), unless set to True - an explicit option, so it is part of the run's config. Families
  where no prefix can be cut exactly (PaliGemma, Mllama, Qwen3-VL, IDEFICS) fall back by
  themselves, see `prefix_scoring`.
- `length_buckets=True` (generate): batches are cut from the requests sorted by prompt length
  (image tokens included), then results are put back in request order; less padding, same text.
- `cache_implementation="static"`, `compile_decode=True` (generate, GPU): see `decode_path`.
"""

from __future__ import annotations

import inspect
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import numpy as np

from vlmlab.errors import ModelError, VlmlabError
from vlmlab.models.base import (
    GenerationRequest,
    GenerationResult,
    ScoreRequest,
    ScoreResult,
    conversation_images,
)
from vlmlab.models.batching import batches
from vlmlab.models.checkpoint import check_safetensors_files, open_checkpoint, resolve_checkpoint
from vlmlab.models.decode_path import check_decode_options, decode_options
from vlmlab.models.families import ResolvedSpec
from vlmlab.models.hf_encode import (
    Encoded,
    ImageInputCache,
    collate,
    encode_conversation,
    image_token_id,
)
from vlmlab.models.hf_outputs import generated_ids, pool_hidden, top_logprobs
from vlmlab.models.positions import GenerationTooLong, check_room, position_limit
from vlmlab.models.prefix_scoring import PrefixStats, find_decoder, shared_prefix
from vlmlab.models.sampling import SeededSampler
from vlmlab.models.quantize import check_quantizable, quantization_error, quantization_kwargs
from vlmlab.models.vision_cache import CacheKind, VisionFeatureCache, batch_kind

DType = Literal["auto", "bfloat16", "float16", "float32"]


class HFBackend:
    """Generate and score with a Hugging Face vision-language checkpoint (see module doc)."""

    name = "hf"
    supports_score = True

    def __init__(
        self,
        path: str | Path,
        *,
        dtype: DType = "auto",
        device_map: str | None = None,
        adapter: Path | str | None = None,
        quantization: str | None = None,
        batch_size: int = 8,
        vision_cache: bool = True,
        max_length: int | None = None,
        logprob_source: Literal["raw", "processed"] = "raw",
        vision_cache_size: int = 4096,
        image_input_cache: bool = True,
        image_input_cache_size: int = 128,
        prefix_sharing: bool | None = None,
        length_buckets: bool = True,
        cache_implementation: Literal["dynamic", "static"] = "dynamic",
        compile_decode: bool = False,
        spec: ResolvedSpec | None = None,
        processor: Any = None,
    ) -> None:
        """Load a checkpoint folder (or a cached hub id).

        `spec` and `processor` come from `open_checkpoint` (what `loading.load_backend` passes);
        when omitted they are resolved here from the folder.
        """
        import torch
        import transformers

        self.path = resolve_checkpoint(path)
        if spec is None or processor is None:
            processor, spec = open_checkpoint(self.path)
        self.spec = spec
        if batch_size < 1:
            raise ModelError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        check_decode_options(cache_implementation, compile_decode)
        self.max_length = max_length
        self.logprob_source = logprob_source
        kwargs: dict[str, Any] = {}
        if dtype == "auto":
            kwargs["dtype"] = getattr(torch, self.spec.dtype) if self.spec.dtype else "auto"
        elif dtype in ("bfloat16", "float16", "float32"):
            kwargs["dtype"] = getattr(torch, dtype)
        else:
            raise ModelError(f"dtype must be auto, bfloat16, float16 or float32, got {dtype!r}")
        if device_map is not None:
            kwargs["device_map"] = device_map
        self.quantization = quantization
        kwargs |= quantization_kwargs(quantization, device_map)
        check_quantizable(self.path, quantization)
        self.processor = processor
        check_safetensors_files(self.path)
        try:
            model = transformers.AutoModelForImageTextToText.from_pretrained(self.path, **kwargs)
        except (OSError, ValueError, KeyError, RuntimeError, NotImplementedError) as exc:
            if quantization is not None and not isinstance(exc, OSError):
                raise quantization_error(self.path, quantization, exc) from None
            raise ModelError(f"{self.path}: cannot load the model ({type(exc).__name__}: {exc})") from None
        if adapter is not None:
            adapter = Path(adapter)
            if not (adapter / "adapter_config.json").exists():
                raise ModelError(f"{adapter}: no adapter_config.json; pass a PEFT LoRA adapter folder")
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter)
        model.eval()
        self.model = model
        self.device = next(model.parameters()).device
        self.position_limit = position_limit(model.config)  # prompt + max_new_tokens must fit (see generate)
        tok = self.processor.tokenizer
        self.pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        self.image_token_id = image_token_id(self.processor)
        self._use_vision_cache = vision_cache and self.spec.vision_cache
        self._vision = VisionFeatureCache(vision_cache_size)
        # score() only: the LM head runs at target positions only, where the model takes logits_to_keep
        forward = (model.get_base_model() if hasattr(model, "get_base_model") else model).forward
        self._keeps_logits = "logits_to_keep" in inspect.signature(forward).parameters
        # score() only: per-image processor outputs, for processors that treat each image on its own
        self.image_inputs = (
            ImageInputCache(image_input_cache_size) if image_input_cache and self._use_vision_cache else None
        )
        # score() only: rows sharing a prompt prefix run it through the decoder once (prefix_scoring)
        exact = model.dtype == torch.float32 and quantization is None  # shared == unshared to 1e-5 (tested)
        self.prefix_sharing = exact if prefix_sharing is None else prefix_sharing
        self._decoder = find_decoder(model)
        self.prefix_stats = PrefixStats()
        self.length_buckets = length_buckets
        self._decode_kwargs = decode_options(model, cache_implementation, compile_decode)

    @property
    def family(self) -> str:
        """The model's family name (e.g. "qwen2-vl"; model_type with dashes for generic families)."""
        return self.spec.family.family

    @property
    def max_images_per_prompt(self) -> int | None:
        """The most images one prompt may hold (BLIP-2: 1); None = any number.

        Studies that put several images in one prompt (ICL demonstrations) read it to refuse a
        model up front instead of failing every item.
        """
        return self.spec.max_images

    # ------------------------------------------------------------------ helpers

    @property
    def _base(self) -> Any:
        """The module that computes image features (`model.model` where the model wraps one, else
        the model itself: BLIP-2), under a PEFT wrapper if any."""
        m = self.model
        if hasattr(m, "get_base_model"):
            m = m.get_base_model()
        inner = getattr(m, "model", None)
        return inner if inner is not None and hasattr(inner, "get_image_features") else m

    def _encode(self, conversation: list, target: str | None, image_inputs: ImageInputCache | None = None) -> Encoded:
        spec = self.spec
        n = sum(len(t.images) for t in conversation)
        if (spec.max_images is not None and n > spec.max_images) or n < spec.min_images:
            most = "any number of" if spec.max_images is None else f"at most {spec.max_images}"
            raise ModelError(f"{spec.name} takes {most} image(s) per prompt and at least {spec.min_images}, got {n}")
        enc = encode_conversation(self.processor, conversation, target, image_inputs=image_inputs)
        if self.max_length is not None and enc.input_ids.shape[0] > self.max_length:
            raise ModelError(
                f"input has {enc.input_ids.shape[0]} tokens ({enc.num_image_tokens} image tokens), more than "
                f"max_length={self.max_length}; raise max_length or shorten the prompt (never truncated)"
            )
        return enc

    def _to_device(self, batch: dict) -> dict:
        return {k: v.to(self.device) for k, v in batch.items()}

    @property
    def vision_cache_hits(self) -> int:
        return self._vision.hits

    @property
    def vision_cache_misses(self) -> int:
        return self._vision.misses

    def clear_vision_cache(self) -> None:
        self._vision.clear()

    def _vision_kind(self, encs: Sequence[Encoded], images: list) -> CacheKind | None:
        return batch_kind([e.model_inputs for e in encs], len(images)) if self._use_vision_cache else None

    def _run(self, requests: Sequence[Any], encode: Callable[[Any], Encoded], run_batch: Callable[..., list],
             error: Callable[[Any, str], Any], by_length: bool = False) -> list:
        """The one batching skeleton of generate and score, with one exception policy.

        Encoding errors (`VlmlabError`: a missing image, too many images, too long) fail their
        item. A batch that raises `RuntimeError`/`ValueError`/`VlmlabError` is retried item by item,
        so one bad item fails alone; its error is the exception's one-line message. `by_length`:
        batches are cut from the requests sorted by prompt length (see `batching.batches`);
        results come back in request order.
        """
        results: dict[int, Any] = {}
        encoded: dict[int, Encoded] = {}
        for i, req in enumerate(requests):
            try:
                encoded[i] = encode(req)
            except GenerationTooLong:
                raise  # a setting of the whole study, not one bad item
            except VlmlabError as exc:
                results[i] = error(req, str(exc))

        def attempt(idx: list[int]) -> None:
            try:
                results.update(zip(idx, run_batch([requests[i] for i in idx], [encoded[i] for i in idx])))
            except (RuntimeError, ValueError, VlmlabError) as exc:
                if len(idx) > 1:
                    for i in idx:
                        attempt([i])
                    return
                msg = str(exc) if isinstance(exc, VlmlabError) else f"{type(exc).__name__}: {exc}"
                results[idx[0]] = error(requests[idx[0]], " ".join(msg.split()))

        for batch in batches(encoded, self.batch_size, by_length):
            attempt(batch)
        return [results[i] for i in range(len(requests))]

    # ------------------------------------------------------------------ generate

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """One result per request, in order; see the module doc for batching, seeds and logprobs."""
        def encode(r: GenerationRequest) -> Encoded:
            enc = self._encode(r.conversation, None)
            check_room(r.id, enc.prompt_length, r.max_new_tokens, self.position_limit, self.path.name)
            return enc

        return self._run(requests, encode, self._generate_batch,
                         lambda r, msg: GenerationResult(id=r.id, status="error", error=msg), by_length=self.length_buckets)

    def _generate_batch(self, reqs: list[GenerationRequest], encs: list[Encoded]) -> list[GenerationResult]:
        import torch

        t0 = time.perf_counter()
        tok = self.processor.tokenizer
        batch = self._to_device(collate(encs, "left", self.pad_id))
        images = [im for r in reqs for im in conversation_images(r.conversation)]
        model_batch = self._vision.apply(self._base, batch, images, self._vision_kind(encs, images))
        want_lp = any(r.top_logprobs > 0 for r in reqs)
        want_hidden = any(r.hidden_layers for r in reqs)
        max_new = max(r.max_new_tokens for r in reqs)
        sampler = SeededSampler(reqs, keep_processed=want_lp and self.logprob_source == "processed")
        sampling = any(r.temperature != 0 for r in reqs)
        gen_kwargs: dict[str, Any] = dict(
            max_new_tokens=max_new,
            do_sample=False,  # sampling, if any, is done per row by SeededSampler
            temperature=None, top_p=None, top_k=None,
            pad_token_id=self.pad_id,
            return_dict_in_generate=True,
            output_logits=want_lp,
            output_hidden_states=want_hidden,
            **self._decode_kwargs,
        )
        if sampling or sampler.keep_processed:
            from transformers import LogitsProcessorList

            gen_kwargs["logits_processor"] = LogitsProcessorList([sampler])
        with torch.no_grad():
            out = self.model.generate(**model_batch, **gen_kwargs)
        prompt_len = batch["input_ids"].shape[1]
        new_tokens = out.sequences[:, prompt_len:]
        step_logprobs = (
            [torch.log_softmax(x.float(), dim=-1) for x in out.logits] if self.logprob_source == "raw" and want_lp
            else sampler.processed if want_lp else None
        )
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        seconds = (time.perf_counter() - t0) / len(reqs)
        results = []
        for b, (req, enc) in enumerate(zip(reqs, encs)):
            ids = generated_ids(new_tokens[b].tolist(), req.max_new_tokens, eos_ids | {self.pad_id})
            text = tok.decode(ids, skip_special_tokens=True)
            logprobs = None
            if req.top_logprobs > 0 and step_logprobs is not None:
                logprobs = top_logprobs(tok, [step[b] for step in step_logprobs[: len(ids)]], ids, req.top_logprobs)
            hidden = None
            if req.hidden_layers:
                hidden = pool_hidden(out.hidden_states[0], batch, b, req, self.image_token_id)
            results.append(GenerationResult(
                id=req.id, status=GenerationResult.status_for(text), text=text, logprobs=logprobs,
                logprob_source=self.logprob_source if logprobs is not None else None, hidden_states=hidden,
                prompt_tokens=int(enc.input_ids.shape[0]), generated_tokens=len(ids), seconds=seconds,
            ))
        return results

    # ------------------------------------------------------------------ score

    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        """Teacher-forced log-probabilities of each request's target tokens (see module doc)."""
        return self._run(requests, lambda r: self._encode(r.conversation, r.target, self.image_inputs), self._score_batch,
                         lambda r, msg: ScoreResult(id=r.id, status="error", error=msg))

    def _score_batch(self, reqs: list[ScoreRequest], encs: list[Encoded]) -> list[ScoreResult]:
        """The one score path: the LM head runs only at the positions that predict target tokens
        (`logits_to_keep` as a boolean [batch, seq] mask where the model takes it, else the full
        logits indexed by that mask: BLIP-2), then one log-softmax and one gather for the batch.
        With a real vocabulary (150k+) the full logits cost more than the rest. Rows that share a
        prompt prefix run it once (`prefix_scoring`)."""
        import torch

        tok = self.processor.tokenizer
        images = [im for r in reqs for im in conversation_images(r.conversation)]
        kind = self._vision_kind(encs, images)
        if kind is not None and self._vision.holds(images):
            # every image's features are cached: do not collate pixels the model will not see
            encs = [replace(e, model_inputs={k: v for k, v in e.model_inputs.items() if k != "pixel_values"}) for e in encs]
        batch = self._to_device(collate(encs, "right", self.pad_id))
        model_batch = self._vision.apply(self._base, batch, images, kind)
        ids_batch = batch["input_ids"]
        keep = torch.zeros(ids_batch.shape, dtype=torch.bool)
        spans = [enc.label_slice if req.score_end_of_turn else enc.target_slice for req, enc in zip(reqs, encs)]
        for b, sl in enumerate(spans):
            assert sl is not None
            keep[b, sl.start - 1 : sl.stop - 1] = True
        keep = keep.to(ids_batch.device)
        targets = ids_batch.roll(-1, dims=1)[keep]  # the token each kept position predicts
        lengths = [int(e.input_ids.shape[0]) for e in encs]
        with torch.no_grad(), shared_prefix(self._decoder if self.prefix_sharing else None, lengths, self.prefix_stats):
            if self._keeps_logits:
                logits = self.model(**model_batch, use_cache=False, logits_to_keep=keep).logits
            else:
                logits = self.model(**model_batch, use_cache=False).logits[keep]
            vals = torch.log_softmax(logits.float(), dim=-1).gather(-1, targets[:, None])[:, 0].cpu().numpy()
        results, start = [], 0
        for req, enc, sl in zip(reqs, encs, spans):
            n = sl.stop - sl.start
            ids = enc.input_ids[sl].tolist()
            results.append(ScoreResult(
                id=req.id, status="ok", token_logprobs=vals[start : start + n].astype(np.float32), token_ids=ids,
                tokens=[tok.decode([t]) for t in ids],
            ))
            start += n
        return results

    def describe(self) -> dict[str, Any]:
        """Facts about the loaded model for logs and `vlmlab models check`."""
        return {
            "path": str(self.path),
            "family": self.spec.name,
            "model_type": self.spec.family.model_type,
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "dtype": str(next(self.model.parameters()).dtype).replace("torch.", ""),
            "device": str(self.device),
            "vision_cache": self._use_vision_cache,
            "max_images_per_prompt": self.spec.max_images,
            "quantization": self.quantization,
        }

