"""Compare eval runs side by side, honestly: `compare_runs([A, B, ...])` -> tables (Markdown and CSV).

Cells are (test size, shots, method) present in every run. Run A (the first) is the baseline.
Every number of a cell is computed on the questions all runs share in that cell, and `n` says how
many. Runs evaluated on different questions are refused unless `allow_different_subsets`, which
then also shows each run on its own questions (never a difference between different question
sets). Runs that share no question are refused.

For each other run X, per cell: X−A in points with a paired CI, a two-sided p (paired bootstrap
over images by default: questions that share an image are resampled together; or a sign-flip
permutation test), the p adjusted by Holm over all tests (or not, `correction="none"`), and the
minimum detectable difference (MDD) at 80% power from the cell's n and the variance of its paired
differences. A verdict names a run only when its adjusted p is below alpha (the test decides, also
below the MDD); a difference that is not significant and smaller than the MDD is "within noise".
Over all cells, per shot and per size: mean difference, largest gain and loss, cells up/down/equal,
significant up/down and within noise. The CSV names each CI's method per row (`CI_method(X)`).

Inputs are eval run folders: `metrics.json` (`cells`), `subsets.json` (size label -> question ids)
and the ledger (one line per method/shots/question with `acc` and `image_id`; ledgers without image ids
are compared by question, and the notes say so).
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from vlmlab.errors import ConfigError, RunError
from vlmlab.metrics.inference import ci_label, format_p, holm
from vlmlab.metrics.paired import paired_bootstrap, paired_mdd, sign_flip_test
from vlmlab.runs import atomic_write_text, read_ledger

EQUAL_TOL = 1e-9
UNITS = ("image", "question")
TESTS = ("bootstrap", "permutation")
CORRECTIONS = ("holm", "none")


@dataclass
class CompareTables:
    """`cells`: one row per cell; `summary`: one row per (scope, run); `runs`: folders; `notes`: how to read."""

    runs: list[str]
    cells: list[dict]
    summary: list[dict]
    notes: list[str] = field(default_factory=list)

    def to_markdown(self) -> str:
        out = ["## Runs", ""] + [f"- {chr(65 + i)}: `{r}`" for i, r in enumerate(self.runs)]
        out += ["", "## How to read", ""] + [f"- {n}" for n in self.notes]
        # The CI's method is one line of "How to read" here; the CSV and `cells` carry it per row.
        out += ["", "## Cells (accuracy %, differences in points)", "", _md_table([{k: v for k, v in r.items() if not k.startswith("CI_method(")}
                                                                                  for r in self.cells])]
        out += ["", "## Summary (vs A)", "", _md_table(self.summary)]
        return "\n".join(out) + "\n"

    def write(self, folder: Path | str) -> list[Path]:
        """Write `compare.md`, `compare_cells.csv` and `compare_summary.csv` into `folder`."""
        folder = Path(folder)
        paths = [folder / "compare.md", folder / "compare_cells.csv", folder / "compare_summary.csv"]
        atomic_write_text(paths[0], self.to_markdown())
        atomic_write_text(paths[1], _csv(self.cells))
        atomic_write_text(paths[2], _csv(self.summary))
        return paths


def _fmt(v) -> str:
    if isinstance(v, float):
        return "–" if math.isnan(v) else f"{v:.4g}"
    return "" if v is None else str(v)


def _md_table(rows: list[dict]) -> str:
    if not rows:
        return "(no rows)"
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(_fmt(r.get(k)) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def _csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return buf.getvalue()


def paired_bootstrap_p(a: np.ndarray, b: np.ndarray, n_boot: int = 2000, seed: int = 0, clusters: Sequence[str] | None = None) -> float:
    """Two-sided p that mean(b − a) differs from 0, resampling items (or `clusters`, e.g. image ids)."""
    if len(a) == 0:
        return float("nan")
    return paired_bootstrap(a, b, clusters=clusters, resamples=n_boot, seed=seed).p_value


@dataclass
class _EvalRun:
    folder: Path
    cells: dict
    subsets: dict
    acc: dict
    image: dict


def _load(folder: Path) -> _EvalRun:
    mpath, spath = folder / "metrics.json", folder / "subsets.json"
    if not mpath.exists() or not spath.exists():
        raise RunError(f"{folder}: not a finished icl eval run (no metrics.json/subsets.json); run `vlmlab icl eval` to completion first")
    cells = {(c["size"], int(c["shots"]), c["method"]): c for c in json.loads(mpath.read_text())["cells"]}
    acc, image = {}, {}
    for r in read_ledger(folder / "ledger.jsonl"):
        if "method" in r:
            acc[(r["method"], int(r["shots"]), str(r["question_id"]))] = float(r.get("acc", 0.0))
            if r.get("image_id") is not None:
                image[str(r["question_id"])] = str(r["image_id"])
    return _EvalRun(folder, cells, json.loads(spath.read_text()), acc, image)


def _questions(run: _EvalRun, size: str, shots: int, method: str) -> list[str]:
    return [str(q) for q in run.subsets.get(size, []) if (method, shots, str(q)) in run.acc]


def _verdict(diff: float, p_adj: float, mdd: float, alpha: float, name: str) -> str:
    """The test decides; the MDD only says how to read a difference the test did not find.

    A significant difference is named even when it is smaller than the MDD (the test set had less
    than 80% power for it: its size is likely overestimated, not noise). "Within noise" is a
    difference that is neither significant nor as large as the test set can detect.
    """
    if abs(diff) <= EQUAL_TOL * 100:
        return "no difference"
    if p_adj < alpha:
        return f"{name} better" if diff > 0 else "A better"
    if math.isnan(mdd):
        return "too few units"
    if abs(diff) < mdd:
        return "within noise"
    return "not significant"


def compare_runs(
    dirs: Sequence[Path | str],
    n_boot: int = 2000,
    seed: int = 0,
    *,
    unit: str = "image",
    test: str = "bootstrap",
    correction: str = "holm",
    allow_different_subsets: bool = False,
    alpha: float = 0.05,
    power: float = 0.8,
) -> CompareTables:
    """Compare eval runs; the first is the baseline A. See the module docstring for the tables.

    Raises:
        RunError: fewer than two runs, a folder that is not a finished eval run, no shared cell,
            no shared question, or different questions without `allow_different_subsets`.
    """
    for name, value, allowed in (("unit", unit, UNITS), ("test", test, TESTS), ("correction", correction, CORRECTIONS)):
        if value not in allowed:
            raise ConfigError(f"compare: unknown {name} {value!r}; choose from {', '.join(allowed)}")
    if len(dirs) < 2:
        raise RunError("compare needs at least two eval run folders")
    folders = [Path(d) for d in dirs]
    runs = [_load(f) for f in folders]
    keys = [k for k in runs[0].cells if all(k in r.cells for r in runs[1:])]
    if not keys:
        raise RunError(f"runs {', '.join(map(str, folders))} share no (size, shots, method) cell; compare runs of the same evaluation grid")
    names = [chr(65 + i) for i in range(len(folders))]
    cells, tests, by_image = [], [], True
    for size, shots, method in keys:
        own = [_questions(r, size, shots, method) for r in runs]
        common = set(own[0]).intersection(*map(set, own[1:]))
        shared = [q for q in own[0] if q in common]
        where = f"cell size={size} shots={shots} method={method}"
        if not shared:
            raise RunError(f"{where}: the runs share no question ({' vs '.join(f'{n} {len(o)}' for n, o in zip(names, own))}); "
                           "compare runs evaluated on the same test questions")
        if any(set(o) != common for o in own) and not allow_different_subsets:
            raise RunError(f"{where}: the runs were evaluated on different questions ({', '.join(f'{n} {len(o)}' for n, o in zip(names, own))}, "
                           f"{len(shared)} shared); pass --allow-different-subsets to compare on the shared ones")
        images = [runs[0].image.get(q) or runs[1].image.get(q) for q in shared]
        use_images = unit == "image" and all(i is not None for i in images)
        by_image &= use_images or unit == "question"
        clusters = images if use_images else None
        scores = [np.array([r.acc[(method, shots, q)] for q in shared]) for r in runs]
        row: dict = {"size": size, "shots": shots, "method": method, "n": len(shared),
                     "n_images": len(set(images)) if use_images else None}
        for n, s in zip(names, scores):
            row[f"{n}_acc"] = 100 * float(s.mean())
        for i in range(1, len(runs)):
            x = names[i]
            if test == "bootstrap":
                res = paired_bootstrap(scores[0], scores[i], clusters=clusters, unit="images" if use_images else "questions",
                                       resamples=n_boot, seed=seed)
                row[f"{x}-A"] = 100 * res.estimate
                row[f"CI({x}-A)"] = f"[{100 * res.difference.low:.1f}, {100 * res.difference.high:.1f}]"
                row[f"CI_method({x})"] = f"paired {ci_label(res.difference.method, res.unit, res.difference.level, res.resamples)}"
            else:
                res = sign_flip_test(scores[0], scores[i], clusters=clusters, unit="images" if use_images else "questions",
                                     resamples=n_boot, seed=seed)
                row[f"{x}-A"] = 100 * res.estimate
            row[f"p({x})"] = res.p_value
            mdd = 100 * paired_mdd(scores[0], scores[i], clusters=clusters, alpha=alpha, power=power)[0]
            row[f"MDD({x})"] = mdd if mdd > 0 else math.nan  # identical answers: no variance to size a difference from
            tests.append((len(cells), x, res))
        if allow_different_subsets:
            for n, r, o in zip(names, runs, own):
                row[f"{n}_acc(own)"] = 100 * float(np.mean([r.acc[(method, shots, q)] for q in o])) if o else math.nan
                row[f"n_{n}(own)"] = len(o)
        cells.append(row)
    adjusted = holm([t[2].p_value for t in tests]) if correction == "holm" else np.array([t[2].p_value for t in tests])
    for (ci, x, res), p_adj in zip(tests, adjusted):
        row = cells[ci]
        row[f"p({x})"] = format_p(res.p_value, res.resamples)
        row[f"p_adj({x})"] = format_p(float(p_adj), res.resamples)
        row[f"verdict({x})"] = _verdict(row[f"{x}-A"], float(p_adj), row[f"MDD({x})"], alpha, x)
    for row in cells:
        sig = [x for x in names[1:] if row[f"verdict({x})"] == f"{x} better"]
        a_wins = all(row[f"verdict({x})"] == "A better" for x in names[1:])
        row["best"] = "A" if a_wins else (max(sig, key=lambda x: row[f"{x}-A"]) if sig else "none significant")
    notes = _notes(names, n_boot, test, correction, len(tests), by_image, unit, alpha, power, allow_different_subsets)
    return CompareTables(runs=[str(f) for f in folders], cells=_order(cells, names), summary=_summary(cells, names), notes=notes)


def _order(cells: list[dict], names: list[str]) -> list[dict]:
    """Columns grouped per run: X-A, CI, p, p_adj, MDD, verdict next to each other."""
    out = []
    for row in cells:
        first = {k: row[k] for k in ("size", "shots", "method", "n", "n_images")}
        first.update({f"{n}_acc": row[f"{n}_acc"] for n in names})
        for x in names[1:]:
            first.update({k: row[k] for k in (f"{x}-A", f"CI({x}-A)", f"CI_method({x})", f"p({x})", f"p_adj({x})", f"MDD({x})", f"verdict({x})")
                          if k in row})
        first["best"] = row["best"]
        first.update({k: v for k, v in row.items() if k.endswith("(own)")})
        out.append(first)
    return out


def _notes(names: list[str], n_boot: int, test: str, correction: str, n_tests: int, by_image: bool,
           unit: str, alpha: float, power: float, allow: bool) -> list[str]:
    units = "images" if by_image and unit == "image" else "questions"
    why = "" if by_image or unit == "question" else " (the ledgers carry no image ids, so questions are resampled)"
    kind = (f"CI: paired {ci_label('percentile', units, 0.95, n_boot)}; p: two-sided, from the same resamples "
            "(p < 0.05 exactly when the CI excludes 0); p below 1/B is shown as '< 1/B'." if test == "bootstrap"
            else f"p: two-sided paired sign-flip permutation test over {units} (exact up to 16 differing units, "
                 f"else B={n_boot} random flips, p = 2 (count + 1) / (B + 1)).")
    out = [f"n: questions all runs answered in the cell; every accuracy and difference is on those n{why}.", kind,
           (f"p_adj: Holm correction over {n_tests} tests (cells x runs)." if correction == "holm"
            else "p_adj: no multiple-comparison correction (correction none); equal to p."),
           f"MDD: minimum detectable difference (points) at {power:.0%} power and alpha {alpha}, from n and the variance of the "
           "cell's paired differences; a difference that is not significant and smaller than the MDD is 'within noise'.",
           f"verdict/best: a run is named when p_adj < {alpha}, also when its difference is below the MDD (then the test set "
           "had less than 80% power for it, and its size is likely overestimated)."]
    if allow:
        out.append("(own): each run on its own questions (different sets; their difference is not a comparison).")
    return out


def _summary(cells: list[dict], names: list[str]) -> list[dict]:
    summary: list[dict] = []
    scopes = [("all", "", lambda r: True)]
    scopes += [("shots", s, (lambda s: lambda r: r["shots"] == s)(s)) for s in sorted({r["shots"] for r in cells})]
    scopes += [("size", z, (lambda z: lambda r: r["size"] == z)(z)) for z in dict.fromkeys(r["size"] for r in cells)]
    for scope, value, pick in scopes:
        chosen = [r for r in cells if pick(r)]
        for x in names[1:]:
            d = np.array([r[f"{x}-A"] for r in chosen])
            verdicts = [r[f"verdict({x})"] for r in chosen]
            summary.append({
                "scope": scope, "value": value, "run": x, "cells": len(d),
                "mean_diff": float(d.mean()), "max_gain": float(max(d.max(), 0.0)), "max_loss": float(min(d.min(), 0.0)),
                "up": int((d > EQUAL_TOL * 100).sum()), "down": int((d < -EQUAL_TOL * 100).sum()),
                "equal": int((np.abs(d) <= EQUAL_TOL * 100).sum()),
                "significant_up": verdicts.count(f"{x} better"), "significant_down": verdicts.count("A better"),
                "within_noise": verdicts.count("within noise"),
            })
    return summary
