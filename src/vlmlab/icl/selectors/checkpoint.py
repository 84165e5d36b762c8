"""Selector checkpoints: `selector.safetensors` + `selector.json`, loaded strictly.

`selector.json` holds the full resolved `SelectorConfig` and a `DataFingerprint` (dataset name,
hash of the support ids, embedding width, modality). Loading:

- a config given by the caller must match the saved architecture (version, sizes, `num_layers`,
  ...), else `CheckpointError` naming each differing key;
- the weights must have exactly the network's keys, shapes and dtypes, else `CheckpointError` naming
  each missing, unexpected, mis-shaped and mis-typed key (upstream silently dropped weights here;
  `load_state_dict` would silently cast a float16 or int64 tensor);
- a fingerprint given by the caller (the eval data: ids, embedders, hash of the embedding matrix,
  pool sampler, K, mix weights) must match, else `CheckpointError` naming each difference
  (`check_fingerprint(..., allow_mismatch=True)` returns them instead, for a loud warning).

Weights are never unpickled: safetensors only.

Training also keeps a resume state (`resume/state.json` + one safetensors file) that
`write_resume_state` / `read_resume_state` write and read; see the section at the end.

Example::

    save_selector(model, out_dir, data.fingerprint)
    model = load_selector(out_dir, fingerprint=DataFingerprint.from_ids("okvqa", ids, 384, "text"))
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pydantic
from safetensors import SafetensorError
from safetensors.torch import load, load_file, save
from torch import Tensor

from vlmlab.errors import CheckpointError
from vlmlab.icl.selectors.base import SelectorModel
from vlmlab.icl.selectors.config import SelectorConfig
from vlmlab.icl.selectors.data import DataFingerprint
from vlmlab.icl.selectors.registry import build_selector
from vlmlab.runs import atomic_write_bytes, atomic_write_text

WEIGHTS_FILE = "selector.safetensors"
META_FILE = "selector.json"
FORMAT = "vlmlab-selector/1"


def save_selector(
    model: SelectorModel, folder: Path | str, fingerprint: DataFingerprint, extra: dict[str, Any] | None = None
) -> Path:
    """Write weights and metadata atomically into `folder`; returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {name: t.detach().contiguous().cpu() for name, t in model.state_dict().items()}
    atomic_write_bytes(folder / WEIGHTS_FILE, save(state))
    meta = {
        "format": FORMAT,
        "config": model.config.model_dump(mode="json"),
        "data": fingerprint.to_dict(),
        **(extra or {}),
    }
    atomic_write_text(folder / META_FILE, json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return folder


def read_selector_meta(folder: Path | str) -> tuple[SelectorConfig, DataFingerprint, dict[str, Any]]:
    """The saved config, data fingerprint and raw metadata of a checkpoint folder."""
    path = Path(folder) / META_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path} not found; point at a folder written by the icl train stage") from None
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path} is not valid JSON ({exc.msg}); re-run the train stage") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a vlmlab selector checkpoint (format {FORMAT!r} expected)")
    try:
        config = SelectorConfig.model_validate(meta["config"])
        fingerprint = DataFingerprint.from_dict(meta["data"])
    except (KeyError, TypeError, ValueError, pydantic.ValidationError) as exc:
        first = str(exc).splitlines()[0]
        raise CheckpointError(f"{path} has an invalid config or data fingerprint ({first})") from None
    return config, fingerprint, meta


def load_selector(
    folder: Path | str,
    *,
    config: SelectorConfig | None = None,
    fingerprint: DataFingerprint | None = None,
) -> SelectorModel:
    """Build the saved selector and load its weights strictly (eval mode).

    Args:
        folder: the checkpoint folder (`selector.safetensors` + `selector.json`).
        config: if given, its architecture must equal the saved one.
        fingerprint: if given (the data you are about to run on), it must equal the saved one.

    Raises:
        CheckpointError: naming mismatching config keys, data fields, or state-dict keys.
    """
    saved_config, saved_fp, _ = read_selector_meta(folder)
    if config is not None:
        want, have = config.architecture(), saved_config.architecture()
        diff = [f"{key} (saved {have[key]!r}, requested {want[key]!r})" for key in want if want[key] != have[key]]
        if diff:
            raise CheckpointError(f"{Path(folder) / META_FILE}: config mismatch in {'; '.join(diff)}")
    if fingerprint is not None:
        check_fingerprint(folder, fingerprint)
    model = build_selector(saved_config)
    load_weights_strict(model, Path(folder) / WEIGHTS_FILE)
    return model.eval()


def check_fingerprint(folder: Path | str, fingerprint: DataFingerprint, *, allow_mismatch: bool = False) -> list[str]:
    """The differences between the data a checkpoint was trained on and `fingerprint` (the eval data).

    Raises:
        CheckpointError: one line naming every difference, unless `allow_mismatch` (then they are
            returned for the caller to warn about and record).
    """
    _, saved_fp, _ = read_selector_meta(folder)
    diff = saved_fp.mismatches(fingerprint)
    if diff and not allow_mismatch:
        raise CheckpointError(
            f"{Path(folder)} was trained on other data ({'; '.join(diff)}; saved != given); "
            "use a selector trained on this index, or pass --allow-mismatch to run it anyway"
        )
    return diff


def load_weights_strict(model: SelectorModel, path: Path | str) -> None:
    """Load safetensors weights into `model`; any missing/unexpected/mis-shaped key is an error."""
    path = Path(path)
    try:
        state = load_file(str(path))
    except FileNotFoundError:
        raise CheckpointError(f"{path} not found; the checkpoint folder is incomplete") from None
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path} cannot be read as safetensors ({exc}); re-run the train stage") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    common = sorted(set(state) & set(expected))
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(expected[k].shape)}" for k in common if state[k].shape != expected[k].shape]
    # load_state_dict would cast float16 -> float32 or int64 -> float32 without a word
    dtypes = [f"{k} {str(state[k].dtype).removeprefix('torch.')} vs {str(expected[k].dtype).removeprefix('torch.')}"
              for k in common if state[k].dtype != expected[k].dtype]
    problems = []
    if missing:
        problems.append(f"missing keys {_names(_group(missing, expected))}")
    if unexpected:
        problems.append(f"unexpected keys {_names(_group(unexpected, state))}")
    if shapes:
        problems.append(f"shape mismatch {_names(shapes)}")
    if dtypes:
        problems.append(f"dtype mismatch (saved vs expected) {_names(dtypes)}")
    if problems:
        raise CheckpointError(f"{path} does not match the selector config: {'; '.join(problems)}")
    model.load_state_dict(state, strict=True)


def _group(keys: list[str], universe: Any) -> list[str]:
    """Collapse a numbered block whose keys are ALL in `keys` (`cross_layers.1.* (18 keys)`); name every other key."""
    def prefix(key: str) -> str:
        parts = key.split(".")
        cut = next((i + 1 for i, p in enumerate(parts[:-1]) if p.isdigit()), len(parts))
        return ".".join(parts[:cut])

    groups: dict[str, list[str]] = {}
    for key in keys:
        groups.setdefault(prefix(key), []).append(key)
    out: list[str] = []
    for pre, members in groups.items():
        whole = len(members) > 1 and pre not in members and sum(1 for k in universe if prefix(k) == pre) == len(members)
        out += [f"{pre}.* ({len(members)} keys)"] if whole else members
    return out


def _names(keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" (+{len(keys) - limit} more)" if len(keys) > limit else "")


# Resume states ---------------------------------------------------------------------------------
# A resume state is what a training run needs to continue after a crash exactly as if it had not
# stopped: tensors (weights, optimizer moments, RNG states) in one safetensors file, everything else
# (counters, logs, the identity of the run) in `state.json`. The JSON is written LAST and names the
# tensor file together with its sha256, so a kill between the two writes leaves the previous complete
# state in force; the tensor file name carries its digest, so a new state never overwrites the file
# the current JSON points at.

RESUME_DIR = "resume"
RESUME_META = "state.json"
RESUME_FORMAT = "vlmlab-selector-resume/1"


def write_resume_state(folder: Path | str, tensors: dict[str, Tensor], meta: dict[str, Any]) -> Path:
    """Write one complete resume state into `folder` (tensors first, then `state.json`); returns the JSON path.

    Args:
        folder: the resume folder (created), e.g. `<out_dir>/resume`.
        tensors: named CPU tensors (weights, optimizer state, RNG states as uint8).
        meta: JSON-serialisable counters, logs and run identity.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    blob = save({name: t.detach().contiguous().cpu() for name, t in tensors.items()})
    digest = hashlib.sha256(blob).hexdigest()
    tensor_file = f"state-{digest[:16]}.safetensors"
    atomic_write_bytes(folder / tensor_file, blob)
    record = {"format": RESUME_FORMAT, "tensors": tensor_file, "tensors_sha256": digest, **meta}
    atomic_write_text(folder / RESUME_META, json.dumps(record, indent=1) + "\n")
    stale = [p for p in folder.glob("state-*.safetensors") if p.name != tensor_file] + list(folder.glob(".*.tmp"))
    for path in stale:  # earlier states, and temp files of writes killed before their rename
        path.unlink(missing_ok=True)
    return folder / RESUME_META


def read_resume_state(folder: Path | str) -> tuple[dict[str, Tensor], dict[str, Any]] | None:
    """The last complete resume state in `folder` as (tensors, meta), or None when there is none.

    Raises:
        CheckpointError: the state exists but is unreadable or its tensor file does not match its
            recorded sha256 (names the file; deleting the folder starts training over).
    """
    folder = Path(folder)
    path = folder / RESUME_META
    if not path.is_file():
        return None
    fix = f"delete {folder} to start training over"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path} is not valid JSON ({exc}); {fix}") from None
    if not isinstance(meta, dict) or meta.get("format") != RESUME_FORMAT:
        raise CheckpointError(f"{path} is not a selector resume state (format {RESUME_FORMAT!r} expected); {fix}")
    tensor_path = folder / str(meta.get("tensors"))
    try:
        blob = tensor_path.read_bytes()
    except OSError:
        raise CheckpointError(f"{tensor_path} (named by {path}) cannot be read; {fix}") from None
    if hashlib.sha256(blob).hexdigest() != meta.get("tensors_sha256"):
        raise CheckpointError(f"{tensor_path} does not match the sha256 recorded in {path}; {fix}")
    try:
        tensors = load(blob)
    except SafetensorError as exc:
        raise CheckpointError(f"{tensor_path} cannot be read as safetensors ({exc}); {fix}") from None
    return tensors, meta


def clear_resume_state(folder: Path | str) -> None:
    """Remove a resume folder and everything in it (no error when it does not exist)."""
    shutil.rmtree(Path(folder), ignore_errors=True)
