"""Evaluation of demonstration choices: pick ICDs per test query, generate, score VQA accuracy.

Methods (names users type): `zero-shot`, `random`, `text` / `image` (most similar support items by
the index's embeddings), `selector` (a trained selector choosing from the query's own pool). The
support item with the query's own question id is never a demonstration. Retrieved demonstrations
are placed with the most similar LAST, next to the query.

Test subsets are nested prefixes of one seeded permutation of the test split, so "size 100" is a
fixed set that is also contained in "size 1000" and results of different sizes are comparable.
`accuracy_interval` gives the percentile bootstrap CI of mean accuracy over images (questions that
share an image are resampled together) or, as an option, over questions.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from vlmlab.errors import ConfigError, DataError
from vlmlab.icl.index import nearest
from vlmlab.icl.rl_data import anchor_seed
from vlmlab.metrics import inference
from vlmlab.metrics.inference import Interval
from vlmlab.registry import Registry

METHODS = Registry.of_names("eval method", ("zero-shot", "random", "text", "image", "selector"),
                           unknown=lambda name, hint, names: f"unknown eval method {name!r}; {hint or 'choose from ' + ', '.join(names)}")
CI_UNITS = ("image", "question")


def check_method(name: str) -> str:
    return METHODS.check(name)


def nested_subset(ids: Sequence[str], size: int | None, seed: int) -> list[str]:
    """The first `size` ids of a `seed`ed permutation (all of them, permuted, when size is None)."""
    if size is not None and size > len(ids):
        raise DataError(f"test size {size} is larger than the test split ({len(ids)} questions); lower it or use 'full'")
    perm = np.random.default_rng(seed).permutation(len(ids))
    return [ids[i] for i in perm[: len(ids) if size is None else size]]


def random_demos(n_support: int, query_id: str, shots: int, seed: int, exclude: Sequence[int] = ()) -> list[int]:
    """`shots` distinct support positions for one query, seeded by (seed, query id), excluding `exclude`."""
    if shots > n_support - len(exclude):
        raise DataError(f"shots={shots} is larger than the support set ({n_support - len(exclude)} usable items)")
    rng = np.random.default_rng(anchor_seed(seed, query_id))
    banned = set(exclude)
    out: list[int] = []
    while len(out) < shots:
        for p in rng.choice(n_support, size=min(n_support, shots + len(banned)), replace=False):
            if len(out) < shots and int(p) not in banned and int(p) not in out:
                out.append(int(p))
    return out


def retrieved_demos(query_emb: np.ndarray, support_emb: np.ndarray, shots: int, exclude: Sequence[Sequence[int]]) -> np.ndarray:
    """[Q, shots] support positions, most similar LAST (closest to the query in the prompt)."""
    return nearest(query_emb, support_emb, shots, exclude)[:, ::-1].copy()


def accuracy_interval(accs: Sequence[float], image_ids: Sequence[str] | None, unit: str = "image", n_boot: int = 1000,
                      seed: int = 0, level: float = 0.95) -> Interval:
    """Mean accuracy with a percentile bootstrap CI over images (default) or questions.

    Questions that share an image are not independent; resampling them as if they were makes the
    interval too narrow. `unit="question"` (or no image ids) resamples questions.
    """
    if unit not in CI_UNITS:
        raise ConfigError(f"unknown CI unit {unit!r}; use 'image' or 'question'")
    by_image = unit == "image" and image_ids is not None
    return inference.bootstrap_ci("mean", np.asarray(accs, np.float64), clusters=image_ids if by_image else None,
                                  unit="images" if by_image else "questions", resamples=n_boot, seed=seed, level=level)


def bootstrap_ci(values: Sequence[float], n_boot: int = 1000, seed: int = 0, alpha: float = 0.05,
                 clusters: Sequence[str] | None = None) -> tuple[float, float]:
    """Percentile bootstrap interval (low, high) of the mean, over `clusters` when given (vectorised)."""
    if len(values) == 0:
        return (float("nan"), float("nan"))
    ci = inference.bootstrap_ci("mean", np.asarray(values, np.float64), clusters=clusters, resamples=n_boot, seed=seed, level=1 - alpha)
    return (ci.low, ci.high)


def size_label(size: int | None, n_total: int) -> str:
    return f"full ({n_total})" if size is None else str(size)


def results_markdown(cells: list[dict], methods: Sequence[str], title: str = "VQA accuracy") -> str:
    """Rows: test size x shots; columns: methods; each cell `acc [lo, hi]` in percent."""
    rows: dict[tuple[str, int], dict[str, dict]] = {}
    for c in cells:
        rows.setdefault((c["size"], c["shots"]), {})[c["method"]] = c
    head = "| size | shots | " + " | ".join(methods) + " |\n|---|---|" + "---|" * len(methods) + "\n"
    body = ""
    for (size, shots), by_method in rows.items():
        vals = []
        for m in methods:
            c = by_method.get(m)
            vals.append("" if c is None else f"{100 * c['accuracy']:.2f} [{100 * c['ci_low']:.1f}, {100 * c['ci_high']:.1f}]")
        body += f"| {size} | {shots} | " + " | ".join(vals) + " |\n"
    return f"## {title}\n\n{head}{body}"
