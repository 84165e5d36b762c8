"""The toy world: deterministic synthetic datasets with known ground truth.

Every study can run on a laptop against data whose truth is known, in the same file formats as
the real datasets. One entry point::

    from vlmlab.toyworld import generate
    manifest = generate("vqa", "data/toy_vqa", n=3000, seed=0)

Kinds: `captions` (shapes scenes, COCO captions JSON + QuIC-360 TSV), `panorama` (2:1 scenes
with query-dependent captions), `vqa` (ambiguous VQA v2 for in-context learning), `faces`
(cartoon faces + simulated human ratings with planted effects). Same seed, same bytes; the
`manifest.json` in the output folder lists every file with its sha256.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from vlmlab.config import SEED_MAX
from vlmlab.errors import ConfigError
from vlmlab.registry import Registry
from vlmlab.toyworld.staging import staged_generate
from vlmlab.toyworld.writers import Manifest

__all__ = ["KINDS", "DEFAULT_SIZES", "Manifest", "generate"]

DEFAULT_SIZES: dict[str, int] = {"captions": 2000, "panorama": 1000, "vqa": 3000, "faces": 1200}
KIND_OPTIONS: dict[str, tuple[str, ...]] = {"captions": (), "panorama": (), "vqa": ("context_strength",), "faces": ()}
# Lazy, so that importing one kind does not load the others.
GENERATORS: Registry[Callable[..., Manifest]] = Registry(
    "toyworld kind",
    unknown=lambda kind, hint, names: f"toyworld kind {kind!r} is unknown; {hint + ' ' if hint else ''}choose one of {', '.join(names)}",
)
GENERATORS.register_lazy("captions", "vlmlab.toyworld.captions:generate_captions")
GENERATORS.register_lazy("panorama", "vlmlab.toyworld.panorama:generate_panorama")
GENERATORS.register_lazy("vqa", "vlmlab.toyworld.vqa:generate_vqa")
GENERATORS.register_lazy("faces", "vlmlab.toyworld.faces:generate_faces")
KINDS: tuple[str, ...] = GENERATORS.names()


def generate(kind: str, out_dir: str | Path, n: int | None = None, seed: int = 0, overwrite: bool = False,
             options: dict[str, Any] | None = None) -> Manifest:
    """Generate one toy dataset into `out_dir` and return its manifest.

    Args:
        kind: one of `KINDS`.
        out_dir: output folder; must be empty or hold the same toy-world dataset (regenerated).
            Files are written to a staging folder beside it and moved in when complete.
        n: size (images for captions/panorama/faces, questions for vqa); `DEFAULT_SIZES` if None.
        seed: the only source of randomness; same seed, same bytes.
        overwrite: allow replacing another toy-world dataset or writing into an unrelated folder.
        options: kind-specific settings (`KIND_OPTIONS`), e.g. `{"context_strength": 0.9}` for vqa.

    Raises:
        ConfigError: unknown kind (with a suggestion), a non-positive `n`, a bad seed, or an unknown option.
        DataError: the folder holds something else, or cannot be written (read-only, disk full).
    """
    GENERATORS.check(kind)
    size = DEFAULT_SIZES[kind] if n is None else n
    if size < 1:
        raise ConfigError(f"toyworld --n must be at least 1, got {size}")
    if not 0 <= seed <= SEED_MAX:
        raise ConfigError(f"toyworld --seed must be an integer from 0 to {SEED_MAX}, got {seed}")
    options = dict(options or {})
    unknown = sorted(set(options) - set(KIND_OPTIONS[kind]))
    if unknown:
        valid = ", ".join(KIND_OPTIONS[kind]) or "none"
        raise ConfigError(f"toyworld {kind}: unknown option(s) {', '.join(unknown)}; valid for {kind}: {valid}")
    generator = GENERATORS.get(kind)
    return staged_generate(out_dir, kind, overwrite,
                           lambda staging: generator(staging, n=size, seed=seed, overwrite=False, **options))
