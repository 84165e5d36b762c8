"""What the HTTP backends (`openai`, `ollama`) share: retries (`http_retry`), concurrency, image encoding.

A long study sends thousands of requests to a server that will, now and then, answer 429 (slow
down), 5xx, time out, drop the connection or cut a JSON body short. Each request is retried with
exponential backoff and jitter (honouring `Retry-After`); when the retries run out the item
becomes `status="error"` with the last reason, and the run goes on. Results come back in request
order, one per request, whatever order the threads finish in.

The API key is read once from a named environment variable and only ever placed in the
`Authorization` header: it is left out of `repr`, `describe()` and error messages (any echo of it
in a server's message is replaced by `***`).

Subclasses implement three small methods: `_endpoint()`, `_payload(request)` and
`_parse(body, request)`; `HttpBackend.generate` does the rest.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import io
import os
import random
import ssl
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any, Callable, Sequence, TypeVar

import httpx
import PIL.Image

from vlmlab.data.images import Image
from vlmlab.errors import ConfigError, DataError, ModelError
from vlmlab.models.base import GenerationRequest, GenerationResult, LogprobSource, ScoreRequest, ScoreResult
from vlmlab.models.http_retry import RequestFailed, RetryPolicy, ServerUnreachable, post_json
from vlmlab.progress import progress_bar
from vlmlab.registry import did_you_mean

T = TypeVar("T")
R = TypeVar("R")

# Formats sent byte for byte; anything else (GIF, BMP, TIFF, ...) is re-encoded as PNG. Ollama's
# `/v1` endpoint takes only jpeg/png/webp and its native one decodes png/jpeg, so it passes
# `keep=OLLAMA_FORMATS`; a GIF is never sent as-is (servers reject it or take its first frame).
_WEB_MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
OPENAI_FORMATS = ("PNG", "JPEG", "WEBP")
OLLAMA_FORMATS = ("PNG", "JPEG")


# --------------------------------------------------------------------------- images


def image_base64(image: Image, keep: Sequence[str] = OPENAI_FORMATS) -> tuple[str, str]:
    """`(mime_type, base64_text)` of an image, sending the original bytes whenever possible.

    Formats in `keep` (PNG, JPEG, WEBP by default) are sent byte for byte (so a server-side
    `Image` has the same sha256); other formats (GIF, BMP, TIFF, ...) are decoded and re-encoded as
    PNG (a GIF's first frame). A file that is not an image raises `DataError` naming it.
    """
    raw = image.read_bytes()
    try:
        with PIL.Image.open(io.BytesIO(raw)) as probe:
            fmt = probe.format or ""
    except (PIL.UnidentifiedImageError, OSError) as exc:
        raise DataError(f"{image.name}: not a readable image ({type(exc).__name__}); replace or remove it") from None
    if fmt in keep and fmt in _WEB_MIME:
        return _WEB_MIME[fmt], base64.b64encode(raw).decode("ascii")
    png = Image.from_pil(image.load(), format="PNG")
    return "image/png", base64.b64encode(png.read_bytes()).decode("ascii")


def image_data_url(image: Image) -> str:
    """`data:<mime>;base64,<...>` for an OpenAI `image_url` part."""
    mime, b64 = image_base64(image)
    return f"data:{mime};base64,{b64}"


def image_from_base64(text: str) -> Image:
    """Decode a base64 string or a `data:` URL back to an `Image` (bytes); bad base64 -> DataError."""
    if text.startswith("data:"):
        header, sep, text = text.partition(",")
        if not sep or ";base64" not in header:
            raise DataError(f"image data URL {header[:40]!r} is not base64-encoded; send data:<mime>;base64,<...>")
    try:
        return Image(data=base64.b64decode(text, validate=True))
    except ValueError as exc:
        raise DataError(f"image is not valid base64 ({exc}); encode the image bytes with base64") from None


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One verifying SSL context for all backends (building one costs ~0.1-0.2 s of CPU)."""
    return httpx.create_ssl_context()


# --------------------------------------------------------------------------- concurrency


def map_in_threads(fn: Callable[[T], R], items: Sequence[T], max_workers: int, description: str) -> list[R]:
    """`[fn(x) for x in items]` with up to `max_workers` calls at once, results in input order."""
    if not items:
        return []
    results: list[Any] = [None] * len(items)
    with progress_bar(transient=True) as progress, ThreadPoolExecutor(max_workers=max_workers) as pool:
        task = progress.add_task(description, total=len(items))
        futures = {pool.submit(fn, item): i for i, item in enumerate(items)}
        try:
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                progress.advance(task)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)  # do not start the remaining items
            raise
    return results


# --------------------------------------------------------------------------- backend base

# Options every HTTP backend takes besides base_url and model (the names users write in configs).
HTTP_OPTIONS = (
    "api_key_env", "logprob_source", "max_concurrency", "timeout", "max_retries", "backoff_base",
    "backoff_max", "jitter", "max_retry_after", "retry_seed", "extra_body",
)


def check_options(backend: str, options: dict[str, Any], allowed: Sequence[str]) -> None:
    """Raise `ConfigError` naming an unknown option and the closest valid one."""
    for key in options:
        if key not in allowed:
            hint = did_you_mean(key, allowed) or f"valid options: {', '.join(sorted(allowed))}"
            raise ConfigError(f"unknown option {key!r} for the {backend} backend; {hint}")


class HttpBackend:
    """Shared `generate`/`score` for chat servers; subclasses build payloads and parse answers.

    Args:
        base_url: server address (what the subclass documents, e.g. `http://host:8000/v1`).
        model: the model name the server knows.
        api_key_env: name of the environment variable holding the API key, or None for no key.
            An unset or empty variable sends no `Authorization` header (fine for local servers).
        logprob_source: what the server's logprobs mean (`raw` before temperature/top-p, or
            `processed` after); recorded on every result that carries logprobs.
        max_concurrency: requests in flight at once.
        timeout: seconds to wait for a connection and for the answer of one attempt.
        max_retries, backoff_base, backoff_max, jitter, max_retry_after: see `RetryPolicy`.
        retry_seed: seed of the jitter's random numbers.
        extra_body: extra top-level JSON fields sent with every request (server-specific knobs).
    """

    name = "http"
    supports_score = False
    max_images_per_prompt: int | None = None  # the server decides (e.g. vLLM's --limit-mm-per-prompt)

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str | None = None,
        logprob_source: LogprobSource = "raw",
        max_concurrency: int = 4,
        timeout: float = 120.0,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        jitter: float = 0.5,
        max_retry_after: float = 120.0,
        retry_seed: int = 0,
        extra_body: dict[str, Any] | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")) or not httpx.URL(base_url).host:
            raise ConfigError(f"base_url {base_url!r} must be an http:// or https:// URL with a host")
        if logprob_source not in ("raw", "processed"):
            raise ConfigError(f"logprob_source must be 'raw' or 'processed', got {logprob_source!r}")
        if max_concurrency < 1:
            raise ConfigError(f"max_concurrency must be >= 1, got {max_concurrency}")
        if timeout <= 0:
            raise ConfigError(f"timeout must be > 0 seconds, got {timeout}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key_env = api_key_env
        self.logprob_source: LogprobSource = logprob_source
        self.max_concurrency = max_concurrency
        self.timeout = timeout
        self.retry = RetryPolicy(max_retries, backoff_base, backoff_max, jitter, max_retry_after)
        self.retry_seed = retry_seed
        self.extra_body = dict(extra_body or {})
        self._api_key = os.environ.get(api_key_env, "") if api_key_env else ""
        self._rng = random.Random(retry_seed)
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout),
            verify=_ssl_context(),
            limits=httpx.Limits(max_connections=max_concurrency, max_keepalive_connections=max_concurrency),
        )

    # ---- subclass hooks
    def _endpoint(self) -> str:
        raise NotImplementedError

    def _payload(self, request: GenerationRequest) -> dict:
        raise NotImplementedError

    def _parse(self, body: dict, request: GenerationRequest) -> GenerationResult:
        """Turn a decoded answer into a result; any exception on a bad shape becomes the item's error."""
        raise NotImplementedError

    # ---- protocol
    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """One result per request, in order; failures become `status="error"` with a reason.

        Raises `ModelError` before sending anything if a request asks for hidden states, which no
        HTTP server returns, and as soon as one item finds the server unreachable (every attempt
        refused or host unknown): that is not a problem of one item, and recording every item of
        a long run as an error would only hide it. Items in flight finish; the rest are not sent.
        """
        for request in requests:
            if request.hidden_layers:
                raise ModelError(
                    f"{self.name} backend cannot return hidden states (request {request.id!r} asks for layers "
                    f"{list(request.hidden_layers)}); use the hf backend for hidden states"
                )
        return map_in_threads(self._generate_one, list(requests), self.max_concurrency, f"{self.name} generate")

    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        """Always raises: chat endpoints cannot teacher-force a target continuation."""
        raise ModelError(
            f"{self.name} backend cannot score: a chat endpoint cannot teacher-force a target and return its "
            "token log-probabilities; use the hf backend for score()"
        )

    def describe(self) -> dict[str, Any]:
        """Everything that identifies this backend for a run record (never the API key itself)."""
        return {
            "backend": self.name,
            "base_url": self.base_url,
            "model": self.model,
            "api_key_env": self.api_key_env,
            "logprob_source": self.logprob_source,
            "max_concurrency": self.max_concurrency,
            "timeout": self.timeout,
            "retry": dataclasses.asdict(self.retry),
            "retry_seed": self.retry_seed,
            "extra_body": self.extra_body,
        }

    def close(self) -> None:
        """Close the connection pool (also done when used as a context manager)."""
        self._client.close()

    def __enter__(self) -> "HttpBackend":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}(base_url={self.base_url!r}, model={self.model!r}, api_key_env={self.api_key_env!r})"

    # ---- internals
    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    def _redact(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key else text

    def _generate_one(self, request: GenerationRequest) -> GenerationResult:
        start = time.perf_counter()
        try:
            payload = self._payload(request)
            payload.update(self.extra_body)
            body = post_json(
                self._client, self._endpoint(), payload, headers=self._headers(), policy=self.retry, rng=self._rng
            )
            result = self._parse(body, request)
        except DataError as exc:
            result = GenerationResult(id=request.id, status="error", error=str(exc))
        except ServerUnreachable as exc:
            raise ModelError(
                f"cannot reach the {self.name} server at {self.base_url} ({self._redact(exc.reason)}); "
                "start the server or fix base_url, then re-run (finished items are kept)"
            ) from None
        except RequestFailed as exc:
            reason = exc.reason
            if exc.status_code in (401, 403):
                reason += (
                    f"; check the API key in environment variable {self.api_key_env}"
                    if self.api_key_env
                    else "; the server wants an API key: pass api_key_env=<name of the variable holding it>"
                )
            result = GenerationResult(id=request.id, status="error", error=self._redact(reason))
        except Exception as exc:  # noqa: BLE001 - any schema surprise is this item's error, never the run's crash
            reason = f"unexpected response shape ({type(exc).__name__}: {exc})"
            result = GenerationResult(id=request.id, status="error", error=self._redact(reason))
        result.seconds = time.perf_counter() - start
        return result
