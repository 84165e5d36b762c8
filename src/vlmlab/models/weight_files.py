"""Check a checkpoint's `*.safetensors` files before loading, so a damaged file is one line.

A truncated or 0-byte `model.safetensors` (an interrupted download or copy, a full disk) made
transformers fail with a bare `SafetensorError: Error while deserializing header` that names no
file. Reading each header takes milliseconds (no tensor data is read) and safetensors itself
checks that the header covers the file exactly, so truncation anywhere is caught.
"""

from __future__ import annotations

from pathlib import Path

from vlmlab.errors import CheckpointError


def check_safetensors_files(folder: str | Path) -> None:
    """Raise `CheckpointError` naming the first unreadable `*.safetensors` file under `folder`."""
    from safetensors import SafetensorError, safe_open

    folder = Path(folder)
    if not folder.is_dir():
        return  # a hub name or a single file: transformers reports those itself
    for path in sorted(folder.glob("*.safetensors")):
        if path.stat().st_size == 0:
            raise CheckpointError(f"{path}: weights file is empty (0 bytes); re-download or rebuild the checkpoint")
        try:
            with safe_open(str(path), framework="pt") as handle:
                handle.keys()
        except SafetensorError as exc:
            raise CheckpointError(
                f"{path}: truncated or corrupt weights file ({exc}); re-download or rebuild the checkpoint"
            ) from None
