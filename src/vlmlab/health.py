"""Is a finished run healthy? Failed items counted by error message, and the rule for exit code 3.

A run can finish with every item failed: a model name the server does not know turns each
request into `HTTP 400`, a server that ignores the image makes every answer empty. Such a run
must not end like a good one. `assess` counts the items that failed (status `error`) by their
message and calls the run *degraded* when

- by default: every item failed, or more than `max_same_error_share` (0.5) of the items failed
  with one and the same message;
- with `max_error_share` set (the CLI's `--max-error-share`): more than that share failed.

The CLI prints the counts of a degraded run and exits with code 3 ("finished but degraded"); the
failed items are retried on the next run (see `vlmlab.runs`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from vlmlab.errors import ConfigError
from vlmlab.runs import LEDGER_FILE, read_ledger

DEGRADED_EXIT_CODE = 3
# Items that ended in error. An empty generation is an answer (the studies count and warn about
# those themselves); only errors make a run degraded and are retried.
FAILED_STATUSES = ("error",)


@dataclass(frozen=True)
class FailurePolicy:
    """When a finished run counts as degraded (see the module docstring)."""

    max_error_share: float | None = None
    max_same_error_share: float = 0.5

    def __post_init__(self) -> None:
        for name in ("max_error_share", "max_same_error_share"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name} must be a share between 0 and 1, got {value}")


@dataclass
class RunHealth:
    """Failed items of one run, by message, and whether the run is degraded."""

    name: str
    n: int
    failed: int
    by_message: Counter = field(default_factory=Counter)
    degraded: bool = False
    reason: str = ""

    def lines(self, top: int = 5) -> list[str]:
        """What the CLI prints: one headline and the most frequent messages with their counts."""
        head = f"{self.name}: {self.failed}/{self.n} items failed" + (f" ({self.reason})" if self.reason else "")
        return [head] + [f"  {count} x {message}" for message, count in self.by_message.most_common(top)]


def failure_message(record: dict[str, Any]) -> str | None:
    """The message of a failed ledger record (None when the item did not fail)."""
    status = record.get("status")
    if status not in FAILED_STATUSES:
        return None
    message = record.get("error") or "unknown error"
    return " ".join(str(message).split())[:240]


def assess(records: Iterable[dict[str, Any]], name: str, policy: FailurePolicy = FailurePolicy()) -> RunHealth:
    """Count failures by message and apply `policy`."""
    records = list(records)
    messages = Counter(m for m in (failure_message(r) for r in records) if m is not None)
    n, failed = len(records), sum(messages.values())
    health = RunHealth(name=name, n=n, failed=failed, by_message=messages)
    if not n or not failed:
        return health
    share = failed / n
    same_message, same_count = messages.most_common(1)[0]
    if policy.max_error_share is not None:
        if share > policy.max_error_share:
            health.degraded, health.reason = True, f"{share:.0%} failed, more than the allowed {policy.max_error_share:.0%}"
    elif failed == n:
        health.degraded, health.reason = True, "every item failed"
    elif same_count / n > policy.max_same_error_share:
        health.degraded = True
        health.reason = f"{same_count / n:.0%} failed with the same error, more than {policy.max_same_error_share:.0%}"
    return health


def assess_folders(folders: Sequence[Path], policy: FailurePolicy = FailurePolicy(), root: Path | None = None) -> list[RunHealth]:
    """`assess` for each run folder's ledger; names are relative to `root` when given."""
    out = []
    for folder in folders:
        folder = Path(folder)
        name = str(folder.relative_to(root)) if root is not None and folder.is_relative_to(root) else str(folder)
        out.append(assess(read_ledger(folder / LEDGER_FILE), name, policy))
    return out
