"""One JSON POST to a model server, retried the way a long study needs (`HttpBackend` sends every request through it).

A server answers 429 (slow down), 5xx, times out, drops the connection or cuts a JSON body short
now and then. `post_json` retries those with exponential backoff and jitter (honouring
`Retry-After`), fails at once on other 4xx, and says when no attempt even connected
(`ServerUnreachable`: the server is not there, so the preflight can stop the run).
"""

from __future__ import annotations

import dataclasses
import email.utils
import random
import threading
import time
from typing import Callable

import httpx

from vlmlab.errors import ConfigError

# 5xx except "not implemented" / "version not supported", which will not get better by retrying.
_NO_RETRY_5XX = {501, 505}
_RETRY_4XX = {408, 425, 429}


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait before giving up on a request.

    The wait before retry `n` (0-based) is `min(backoff_max, backoff_base * 2**n)`, of which a
    random fraction up to `jitter` is taken away (so many clients do not retry in lock step).
    A `Retry-After` header replaces that wait, capped at `max_retry_after` seconds.
    """

    max_retries: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    jitter: float = 0.5
    max_retry_after: float = 120.0

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ConfigError(f"max_retries must be >= 0, got {self.max_retries}")
        if self.backoff_base < 0 or self.backoff_max < 0 or self.max_retry_after < 0:
            raise ConfigError("backoff_base, backoff_max and max_retry_after must be >= 0 seconds")
        if not 0.0 <= self.jitter <= 1.0:
            raise ConfigError(f"jitter must be between 0 and 1, got {self.jitter}")

    def delay(self, retry: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `retry` (0 = the first retry)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        base = min(self.backoff_max, self.backoff_base * (2**retry))
        return base * (1.0 - self.jitter * rng.random())


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header: delta-seconds (fractions allowed) or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


class RequestFailed(Exception):
    """A request that failed for good; `reason` is one line for `GenerationResult.error`."""

    def __init__(self, reason: str, status_code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_code = status_code


class ServerUnreachable(RequestFailed):
    """Every attempt failed to connect at all (refused, unknown host): the server is not there."""


_RNG_LOCK = threading.Lock()  # random.Random is shared by the worker threads of a backend


def _server_message(response: httpx.Response) -> str:
    """The error text a server put in its body (OpenAI `{"error": {"message"}}`, Ollama `{"error"}`)."""
    try:
        body = response.json()
    except ValueError:
        return " ".join(response.text[:200].split())
    if isinstance(body, dict):
        body = body.get("error", body.get("detail", body))
        if isinstance(body, dict):
            body = body.get("message", body)
    return " ".join(str(body)[:300].split())


def post_json(
    client: httpx.Client,
    url: str,
    payload: dict,
    *,
    headers: dict[str, str],
    policy: RetryPolicy,
    rng: random.Random,
    sleep: Callable[[float], None] = time.sleep,
) -> dict:
    """POST `payload` and return the decoded JSON object, retrying transient failures.

    Retried: timeouts, connection errors (refused, reset, dropped without a response, incomplete
    body), a 2xx body that is not valid JSON, 408/425/429 and 5xx except 501/505. Other 4xx
    fail at once. Raises `RequestFailed` with the last reason when nothing worked, or its
    subclass `ServerUnreachable` when no attempt even connected.
    """
    attempts = policy.max_retries + 1
    reason = "no attempt made"
    never_connected = True
    for attempt in range(attempts):
        retry_after: float | None = None
        try:
            response = client.post(url, json=payload, headers=headers)
        except httpx.TimeoutException as exc:
            reason = f"timed out ({type(exc).__name__})"
            never_connected = False
        except httpx.ConnectError as exc:
            reason = f"connection failed ({type(exc).__name__}: {exc})"
        except httpx.TransportError as exc:
            reason = f"connection failed ({type(exc).__name__}: {exc})"
            never_connected = False
        except httpx.DecodingError as exc:  # a compressed body cut short
            reason = f"truncated or undecodable body ({exc})"
            never_connected = False
        else:
            never_connected = False
            code = response.status_code
            if 200 <= code < 300:
                try:
                    body = response.json()
                except ValueError:
                    reason = f"truncated or invalid JSON body ({len(response.content)} bytes)"
                else:
                    if isinstance(body, dict):
                        return body
                    reason = f"JSON body is a {type(body).__name__}, not an object"
            elif code in _RETRY_4XX or (code >= 500 and code not in _NO_RETRY_5XX):
                reason = f"HTTP {code}: {_server_message(response)}"
                retry_after = parse_retry_after(response.headers.get("retry-after"))
            else:
                raise RequestFailed(f"HTTP {code}: {_server_message(response)} (not retried)", status_code=code)
        if attempt + 1 < attempts:
            with _RNG_LOCK:
                wait = policy.delay(attempt, rng, retry_after)
            sleep(wait)
    reason = f"{reason}; gave up after {attempts} attempt{'s' if attempts != 1 else ''}"
    raise ServerUnreachable(reason) if never_connected else RequestFailed(reason)
