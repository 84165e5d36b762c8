"""A caching wrapper around any `Backend`, keyed by a hash of the request.

    backend = CachedBackend(HFBackend(path), cache_dir=run_dir / "cache", namespace="qwen2-vl-2b")

Caching is a wrapper, not logic inside each backend (lm-eval's `CachingLM`). The key is
`sha256(namespace + request.cache_key())`: the request's conversation (images by content hash),
its decoding options and the namespace, which should name the model (and adapter) so that two
models never share entries. Only `ok` and `empty` results are cached; errors are retried next time.
Each entry is one JSON file written atomically, so a crash never leaves a torn entry.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from vlmlab.errors import VlmlabError
from vlmlab.models.base import Backend, GenerationRequest, GenerationResult, ScoreRequest, ScoreResult, StepLogprobs
from vlmlab.runs import atomic_write_text


def _gen_to_json(r: GenerationResult) -> dict[str, Any]:
    return {
        "status": r.status, "text": r.text, "error": r.error, "logprob_source": r.logprob_source,
        "logprobs": None if r.logprobs is None else [
            {"token": s.token, "logprob": s.logprob, "top": [list(t) for t in s.top], "token_id": s.token_id, "top_ids": s.top_ids}
            for s in r.logprobs
        ],
        "hidden_states": None if r.hidden_states is None else {str(k): v.astype(np.float32).tolist() for k, v in r.hidden_states.items()},
        "prompt_tokens": r.prompt_tokens, "generated_tokens": r.generated_tokens, "seconds": r.seconds,
    }


def _gen_from_json(rid: str, d: dict[str, Any]) -> GenerationResult:
    return GenerationResult(
        id=rid, status=d["status"], text=d["text"], error=d["error"], logprob_source=d["logprob_source"],
        logprobs=None if d["logprobs"] is None else [
            StepLogprobs(token=s["token"], logprob=s["logprob"], top=[(t, v) for t, v in s["top"]],
                         token_id=s["token_id"], top_ids=s["top_ids"])
            for s in d["logprobs"]
        ],
        hidden_states=None if d["hidden_states"] is None else {
            int(k): np.asarray(v, dtype=np.float32) for k, v in d["hidden_states"].items()
        },
        prompt_tokens=d["prompt_tokens"], generated_tokens=d["generated_tokens"], seconds=d["seconds"],
    )


class CachedBackend:
    """Wrap `backend`; answer repeated requests from `cache_dir` (see module doc)."""

    def __init__(self, backend: Backend, cache_dir: Path | str, *, namespace: str = "") -> None:
        self.backend = backend
        self.cache_dir = Path(cache_dir)
        self.namespace = namespace
        self.name = f"cached-{backend.name}"
        self.supports_score = backend.supports_score
        self.hits = 0
        self.misses = 0

    def _path(self, kind: str, request_key: str) -> Path:
        key = hashlib.sha256(f"{self.namespace}\x00{request_key}".encode()).hexdigest()
        return self.cache_dir / kind / key[:2] / f"{key}.json"

    def _lookup(self, kind: str, requests: Sequence[Any]) -> tuple[dict[int, dict], list[int]]:
        found: dict[int, dict] = {}
        missing: list[int] = []
        for i, req in enumerate(requests):
            try:
                p = self._path(kind, req.cache_key())
                found[i] = json.loads(p.read_text())
            except (VlmlabError, FileNotFoundError, json.JSONDecodeError):
                # VlmlabError: an unreadable image; the backend reports it as this item's error
                missing.append(i)
        self.hits += len(found)
        self.misses += len(missing)
        return found, missing

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """Like `backend.generate`; cached items come back with the request's own id."""
        found, missing = self._lookup("generate", requests)
        out: dict[int, GenerationResult] = {i: _gen_from_json(requests[i].id, d) for i, d in found.items()}
        if missing:
            fresh = self.backend.generate([requests[i] for i in missing])
            for i, r in zip(missing, fresh):
                out[i] = r
                if r.status != "error":  # an ok/empty result implies its images hashed fine
                    self._write("generate", requests[i].cache_key(), _gen_to_json(r))
        return [out[i] for i in range(len(requests))]

    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        """Like `backend.score`; cached items come back with the request's own id."""
        found, missing = self._lookup("score", requests)
        out: dict[int, ScoreResult] = {
            i: ScoreResult(id=requests[i].id, status=d["status"], token_logprobs=np.asarray(d["token_logprobs"], dtype=np.float32),
                           token_ids=d["token_ids"], tokens=d["tokens"], error=d["error"])
            for i, d in found.items()
        }
        if missing:
            fresh = self.backend.score([requests[i] for i in missing])
            for i, r in zip(missing, fresh):
                out[i] = r
                if r.status != "error":
                    self._write("score", requests[i].cache_key(), {
                        "status": r.status, "token_logprobs": np.asarray(r.token_logprobs, dtype=np.float32).tolist(),
                        "token_ids": list(r.token_ids), "tokens": list(r.tokens), "error": r.error,
                    })
        return [out[i] for i in range(len(requests))]

    def _write(self, kind: str, request_key: str, payload: dict) -> None:
        p = self._path(kind, request_key)
        p.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(p, json.dumps(payload))
