"""From a model reference to a local checkpoint folder, its processor and its resolved family
spec, with one-line errors for everything that can go wrong before a model loads (hub access,
an architecture that is not image-text-to-text, a fact that cannot be derived, a damaged weights
file)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from vlmlab.errors import CheckpointError, ModelError
from vlmlab.models.families import ResolvedSpec, family_for_model_type, read_model_type, resolve_spec
from vlmlab.models.processor import load_processor


def resolve_checkpoint(path_or_id: str | Path) -> Path:
    """A local folder as is; otherwise a Hugging Face id resolved through the local HF cache/hub."""
    p = Path(path_or_id).expanduser()
    if p.is_dir():
        return p
    if p.exists():
        raise ModelError(f"{p}: is a file; pass the checkpoint folder that holds config.json")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(str(path_or_id)))
    except Exception as exc:  # noqa: BLE001 - hub_error turns every hub failure into one line
        raise hub_error(str(path_or_id), exc) from None


# What a processor, a config and a chat template are made of: everything of a hub repo but its weights.
CONFIG_FILES = ("*.json", "*.jinja", "*.txt", "*.model", "*.tiktoken", "tokenizer*")


def resolve_configs(path_or_id: str | Path) -> Path:
    """Like `resolve_checkpoint`, but of a hub id only the files that are not weights are fetched
    (`CONFIG_FILES`): enough to check access, the config and the processor before a long download."""
    p = Path(path_or_id).expanduser()
    if p.exists():
        return resolve_checkpoint(p)
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(str(path_or_id), allow_patterns=list(CONFIG_FILES)))
    except Exception as exc:  # noqa: BLE001 - hub_error turns every hub failure into one line
        raise hub_error(str(path_or_id), exc) from None


def hub_error(repo_id: str, exc: BaseException) -> ModelError:
    """One line for a hub id that cannot be fetched: which model, why, and what to do."""
    from huggingface_hub.errors import GatedRepoError, HFValidationError, LocalEntryNotFoundError, RepositoryNotFoundError
    from huggingface_hub.utils import get_token

    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(exc, GatedRepoError):
        if get_token() is None:
            return ModelError(f"{repo_id}: the model is gated (HTTP {status}) and no Hugging Face token is set; "
                              "log in with `hf auth login` (or set HF_TOKEN) after accepting its licence on its hub page")
        return ModelError(f"{repo_id}: the model is gated (HTTP {status}) and your token has not been granted access; "
                          f"accept its licence at https://huggingface.co/{repo_id} and try again")
    if isinstance(exc, RepositoryNotFoundError):
        return ModelError(f"{repo_id}: no such model on the hub (HTTP {status}), or it is private and your token cannot see it; "
                          "check the id (`vlmlab models list` has the registered names) or log in")
    if isinstance(exc, LocalEntryNotFoundError):
        return ModelError(f"{repo_id}: not in the local Hugging Face cache and the hub cannot be reached (offline: "
                          "HF_HUB_OFFLINE=1 or no network); download it once online (`hf download " + repo_id + "`) or pass a local folder")
    if isinstance(exc, HFValidationError):
        return ModelError(f"{repo_id}: not a local folder and not a valid hub id; pass a checkpoint folder or an owner/name id")
    first = " ".join(str(exc).split())[:200]
    return ModelError(f"{repo_id}: cannot download from the hub ({type(exc).__name__}: {first}); check the network or pass a local folder")


def model_class(path: Path) -> type:
    """The `AutoModelForImageTextToText` class of a checkpoint (one-line error if it has none)."""
    import transformers

    try:
        config = transformers.AutoConfig.from_pretrained(path)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"{path}: cannot read its config ({type(exc).__name__}: {exc})") from None
    try:  # the auto class's own (public) mapping, so the class named is the class it would load
        return transformers.MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING[type(config)]
    except KeyError:
        raise ModelError(
            f"{path}: model_type {config.model_type!r} is not an image-text-to-text architecture in transformers "
            f"{transformers.__version__} (AutoModelForImageTextToText has no class for it)"
        ) from None


def open_checkpoint(path: Path) -> tuple[Any, ResolvedSpec]:
    """(processor, resolved family spec) of a local checkpoint folder; fails here, at load, with
    one line when a fact the backend needs cannot be derived."""
    fam = family_for_model_type(read_model_type(path))
    cls = model_class(path)
    try:
        processor = load_processor(path, default_chat_template=fam.default_chat_template, require_chat_template=False)
    except ImportError as exc:  # transformers' placeholder class of a processor whose backend is missing
        raise ModelError(f"{path}: {missing_backend(exc)}") from None
    spec = resolve_spec(path, processor, cls)
    if (path / "vlmlab_tiny.json").exists():  # tiny models are tested for exact equalities: float32
        spec = replace(spec, dtype="float32")
    return processor, spec




def missing_backend(exc: ImportError) -> str:
    """One line for transformers' "X requires the Y library" error (Pixtral/Mistral3's processor
    imports torchvision): which class, which library, and what to do."""
    import re

    text = " ".join(str(exc).split())
    found = re.search(r"(\w+) requires the (\w+) library", text)
    if found is None:
        return f"cannot load its processor ({text[:200]})"
    cls, lib = found.groups()
    hint = " (the release that matches your torch, e.g. torch 2.14.1 + torchvision 0.29.1)" if lib.lower() == "torchvision" else ""
    return f"its processor {cls} needs {lib.lower()}, which is not installed here; pip install {lib.lower()}{hint}"


def check_safetensors_files(folder: str | Path) -> None:
    """Raise `CheckpointError` naming the first unreadable `*.safetensors` file under `folder`.

    A truncated or 0-byte `model.safetensors` (an interrupted download or copy, a full disk) made
    transformers fail with a bare `SafetensorError: Error while deserializing header` that names no
    file. Reading each header takes milliseconds (no tensor data is read) and safetensors itself
    checks that the header covers the file exactly, so truncation anywhere is caught.
    """
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
