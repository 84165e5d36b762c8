"""Candidate pools: per anchor question, K support items to choose demonstrations from.

Samplers (`random`, `text`, `image`, `mix`) are the names users type. `mix` takes 50% random, 25%
text-similar and 25% image-similar by default (upstream Lever-LM's ratios). The anchor is excluded
BY ID: several questions can share one image, so the most similar image is not necessarily the
anchor. Each anchor draws from its own generator seeded by (seed, anchor position), so a pool does
not depend on which other anchors are processed, in which order, or on which rank.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from vlmlab.errors import ConfigError, DataError
from vlmlab.icl.index import SupportIndex, nearest
from vlmlab.registry import Registry

SAMPLERS = Registry.of_names("sampler", ("random", "text", "image", "mix"))
DEFAULT_MIX = {"random": 0.5, "text": 0.25, "image": 0.25}


def check_sampler(name: str) -> str:
    """Validate a sampler name (did-you-mean on typos)."""
    return SAMPLERS.check(name)


def choose_anchors(n_support: int, n_anchors: int, seed: int) -> list[int]:
    """`n_anchors` distinct support positions, drawn with `seed` (in draw order)."""
    if n_anchors > n_support:
        raise DataError(f"asked for {n_anchors} anchors but the support set has {n_support} questions; lower `anchors`")
    rng = np.random.default_rng(seed)
    return [int(p) for p in rng.choice(n_support, size=n_anchors, replace=False)]


def mix_counts(k: int, weights: dict[str, float]) -> dict[str, int]:
    """Split K among the samplers by weight (largest remainders; the counts sum to K)."""
    total = sum(weights.values())
    if total <= 0 or any(w < 0 for w in weights.values()):
        raise ConfigError(f"mix weights must be non-negative with a positive sum, got {weights}")
    exact = {n: k * w / total for n, w in weights.items()}
    counts = {n: int(np.floor(v)) for n, v in exact.items()}
    rest = k - sum(counts.values())
    for n in sorted(exact, key=lambda n: (counts[n] - exact[n], list(exact).index(n)))[:rest]:
        counts[n] += 1
    return counts


def build_pools(
    index: SupportIndex,
    anchors: Sequence[int],
    sampler: str,
    k: int,
    seed: int,
    mix_weights: dict[str, float] | None = None,
) -> list[list[int]]:
    """One pool (support positions) per anchor position; the anchor itself is never in its pool.

    Args:
        index: the support index (its rows are the candidates).
        anchors: anchor positions in the support set.
        sampler: `random`, `text`, `image` or `mix`.
        k: pool size; must be < the support size.
        seed: seed of the random parts.
        mix_weights: for `mix`, weights of `random`, `text`, `image` (default 0.5/0.25/0.25).
    """
    rows = list(anchors)
    return pools_for_queries(index, index.text[rows], index.image[rows], [[a] for a in rows], rows, sampler, k, seed, mix_weights)


def pools_for_queries(
    index: SupportIndex,
    query_text: np.ndarray,
    query_image: np.ndarray,
    exclude: Sequence[Sequence[int]],
    seed_keys: Sequence[int],
    sampler: str,
    k: int,
    seed: int,
    mix_weights: dict[str, float] | None = None,
) -> list[list[int]]:
    """Pools for arbitrary queries (e.g. test questions) given their embeddings.

    Args:
        exclude: per query, support positions never to include (its own id, if in the support set).
        seed_keys: per query, an integer that seeds its random part together with `seed`.

    Returns:
        Per query, `k` distinct support positions.
    """
    check_sampler(sampler)
    m = len(index)
    n_excl = max((len(e) for e in exclude), default=0)
    if k < 1:
        raise ConfigError(f"pool size K must be >= 1, got {k}")
    if k > m - n_excl:
        raise DataError(f"pool size K={k} needs at least {k + n_excl} support questions (the anchor is excluded), got {m}; lower k")
    weights = dict(mix_weights or DEFAULT_MIX) if sampler == "mix" else {sampler: 1.0}
    unknown = set(weights) - {"random", "text", "image"}
    if unknown:
        raise ConfigError(f"mix weights: unknown sampler(s) {sorted(unknown)}; use random, text, image")
    counts = mix_counts(k, weights)
    ranked: dict[str, np.ndarray] = {}
    for modality, queries in (("text", query_text), ("image", query_image)):
        if counts.get(modality, 0) > 0:
            # deep enough to fill this part even after removing everything another part took
            ranked[modality] = nearest(queries, index.matrix(modality), min(m - n_excl, k), exclude=exclude)
    pools = []
    for row, key in enumerate(seed_keys):
        taken: list[int] = []
        seen = set(int(e) for e in exclude[row])
        for modality in ("text", "image"):
            need = counts.get(modality, 0)
            for p in ranked[modality][row] if modality in ranked else []:
                if need == 0:
                    break
                if int(p) not in seen:
                    taken.append(int(p))
                    seen.add(int(p))
                    need -= 1
        need = k - len(taken)
        if need:
            rng = np.random.default_rng([seed, int(key)])
            if m < 4 * k + 8:
                rest = np.array([p for p in range(m) if p not in seen], dtype=np.int64)
                taken.extend(int(p) for p in rng.choice(rest, size=need, replace=False))
            else:
                while need:
                    for p in rng.choice(m, size=2 * need, replace=False):
                        if need and int(p) not in seen:
                            taken.append(int(p))
                            seen.add(int(p))
                            need -= 1
        pools.append(taken)
    return pools
