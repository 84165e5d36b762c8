"""Compare eval runs side by side: `compare_runs([A, B, ...])` -> tables (Markdown and CSV).

Cells are (test size, shots, method) present in every run. Run A (the first) is the baseline: for
each other run, per-cell difference in accuracy, a paired bootstrap p-value over the questions the
two runs share (two-sided), and, over all cells, per shot and per size: mean difference, largest
gain, largest loss, and counts of cells up / down / equal. The best run of each cell is named.

Inputs are eval run folders: `metrics.json` (`cells`), `subsets.json` (size label -> question ids)
and the ledger (one line per method/shots/question with `acc`).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from vlmlab.errors import RunError
from vlmlab.runs import atomic_write_text, read_ledger

EQUAL_TOL = 1e-9


@dataclass
class CompareTables:
    """`cells`: one row per cell; `summary`: one row per (scope, run); `runs`: folder names."""

    runs: list[str]
    cells: list[dict]
    summary: list[dict]

    def to_markdown(self) -> str:
        out = ["## Runs", ""] + [f"- {chr(65 + i)}: `{r}`" for i, r in enumerate(self.runs)] + ["", "## Cells (accuracy %, B−A in points, paired bootstrap p)", ""]
        out.append(_md_table(self.cells))
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
        return f"{v:.4g}"
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


def paired_bootstrap_p(a: np.ndarray, b: np.ndarray, n_boot: int = 2000, seed: int = 0) -> float:
    """Two-sided p-value that mean(b − a) differs from 0, by resampling paired items."""
    d = np.asarray(b, np.float64) - np.asarray(a, np.float64)
    if len(d) == 0:
        return float("nan")
    if np.all(np.abs(d) < EQUAL_TOL):
        return 1.0
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(n_boot, len(d)))].mean(axis=1)
    return float(min(1.0, 2 * min((means <= 0).mean(), (means >= 0).mean())))


def _load(folder: Path) -> tuple[dict, dict, dict]:
    mpath, spath = folder / "metrics.json", folder / "subsets.json"
    if not mpath.exists() or not spath.exists():
        raise RunError(f"{folder}: not a finished icl eval run (no metrics.json/subsets.json); run `vlmlab icl eval` to completion first")
    cells = {(c["size"], int(c["shots"]), c["method"]): c for c in json.loads(mpath.read_text())["cells"]}
    subsets = json.loads(spath.read_text())
    items = {}
    for r in read_ledger(folder / "ledger.jsonl"):
        if "method" in r:
            items[(r["method"], int(r["shots"]), str(r["question_id"]))] = float(r.get("acc", 0.0))
    return cells, subsets, items


def compare_runs(dirs: Sequence[Path | str], n_boot: int = 2000, seed: int = 0) -> CompareTables:
    """Compare eval runs; the first is the baseline A. See the module docstring for the tables."""
    if len(dirs) < 2:
        raise RunError("compare needs at least two eval run folders")
    folders = [Path(d) for d in dirs]
    loaded = [_load(f) for f in folders]
    keys = [k for k in loaded[0][0] if all(k in l[0] for l in loaded[1:])]
    if not keys:
        raise RunError(f"runs {', '.join(map(str, folders))} share no (size, shots, method) cell; compare runs of the same evaluation grid")
    names = [chr(65 + i) for i in range(len(folders))]
    cells: list[dict] = []
    for size, shots, method in keys:
        row: dict = {"size": size, "shots": shots, "method": method}
        accs = [l[0][(size, shots, method)]["accuracy"] for l in loaded]
        for n, acc in zip(names, accs):
            row[f"{n}_acc"] = 100 * acc
        base_ids = loaded[0][1].get(size, [])
        for i in range(1, len(folders)):
            row[f"{names[i]}-A"] = 100 * (accs[i] - accs[0])
            common = [q for q in base_ids if q in set(loaded[i][1].get(size, []))]
            a = np.array([loaded[0][2].get((method, shots, q), np.nan) for q in common])
            b = np.array([loaded[i][2].get((method, shots, q), np.nan) for q in common])
            ok = ~(np.isnan(a) | np.isnan(b))
            row[f"p({names[i]})"] = paired_bootstrap_p(a[ok], b[ok], n_boot, seed)
        row["best"] = names[int(np.argmax(accs))] if len(set(accs)) > 1 else "tie"
        cells.append(row)
    summary: list[dict] = []
    scopes = [("all", "", lambda r: True)]
    scopes += [("shots", s, (lambda s: lambda r: r["shots"] == s)(s)) for s in sorted({r["shots"] for r in cells})]
    scopes += [("size", z, (lambda z: lambda r: r["size"] == z)(z)) for z in dict.fromkeys(r["size"] for r in cells)]
    for scope, value, pick in scopes:
        chosen = [r for r in cells if pick(r)]
        for i in range(1, len(folders)):
            d = np.array([r[f"{names[i]}-A"] for r in chosen])
            summary.append({
                "scope": scope,
                "value": value,
                "run": names[i],
                "cells": len(d),
                "mean_diff": float(d.mean()),
                "max_gain": float(max(d.max(), 0.0)),
                "max_loss": float(min(d.min(), 0.0)),
                "up": int((d > EQUAL_TOL * 100).sum()),
                "down": int((d < -EQUAL_TOL * 100).sum()),
                "equal": int((np.abs(d) <= EQUAL_TOL * 100).sum()),
            })
    return CompareTables(runs=[str(f) for f in folders], cells=cells, summary=summary)
