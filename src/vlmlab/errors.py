"""Errors a user can act on.

Every problem caused by input (a config key, a data row, an image, a checkpoint) raises a
`VlmlabError` whose message is one line naming the file, row or key and what to do. The CLI
prints that line and exits 2; library callers catch `VlmlabError` and get the same text.
"""

from __future__ import annotations


class VlmlabError(Exception):
    """A problem the user can fix; the message is shown as one line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split("\n")).strip())


class ConfigError(VlmlabError):
    """A config file or override is invalid (unknown key, wrong type, missing value)."""


class DataError(VlmlabError):
    """A data file, row or image is missing, malformed or unusable."""


class ModelError(VlmlabError):
    """A model or checkpoint cannot be loaded or does not support the requested operation."""


class CheckpointError(ModelError):
    """A checkpoint does not match the config that is loading it (missing/unexpected keys)."""


class RunError(VlmlabError):
    """A run folder conflicts with the requested run (different config, corrupt ledger)."""
