"""SPICE through the jar shipped in pycocoevalcap, when its Stanford CoreNLP jars are present.

SPICE 1.0 needs `stanford-corenlp-3.6.0.jar` and `stanford-corenlp-3.6.0-models.jar` in
`pycocoevalcap/spice/lib/`; pycocoevalcap downloads them on first use, which cannot happen on an
offline machine. Without them SPICE is reported as missing (`None` plus the reason), never as 0.
With them we run the jar like pycocoevalcap (`-subset -silent`, no LMDB cache so nothing is
written inside site-packages) under a deadline.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from vlmlab.errors import RunError
from vlmlab.metrics.java import pycocoevalcap_dir, run_java

CORENLP_JARS = ("stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar")


def spice_unavailable_reason() -> str | None:
    """Why SPICE cannot run here (missing jars), or None when it can."""
    lib = pycocoevalcap_dir() / "spice" / "lib"
    missing = [j for j in CORENLP_JARS if not (lib / j).exists()]
    if missing:
        return f"SPICE needs {' and '.join(missing)} in {lib} (Stanford CoreNLP 3.6.0; not downloadable here)"
    return None


def spice(
    hypotheses: Sequence[str], references: Sequence[Sequence[str]], *, timeout: float | None = None
) -> tuple[float, np.ndarray]:
    """Corpus SPICE (mean of item F-scores) and per-item scores; RunError if the jar cannot run."""
    reason = spice_unavailable_reason()
    if reason is not None:
        raise RunError(reason)
    if timeout is None:
        timeout = 600.0 + 0.5 * len(hypotheses)
    folder = pycocoevalcap_dir() / "spice"
    with tempfile.TemporaryDirectory(prefix="vlmlab-spice-") as tmp:
        in_file = Path(tmp) / "in.json"
        out_file = Path(tmp) / "out.json"
        data = [{"image_id": i, "test": h, "refs": list(r)} for i, (h, r) in enumerate(zip(hypotheses, references))]
        in_file.write_text(json.dumps(data), encoding="utf-8")
        run_java(
            ["-jar", "-Xmx8G", "spice-1.0.jar", str(in_file), "-out", str(out_file), "-subset", "-silent"],
            input_bytes=b"", timeout=timeout, what="SPICE (java)", cwd=folder,
        )
        results = json.loads(out_file.read_text(encoding="utf-8"))
    by_id = {r["image_id"]: r["scores"]["All"]["f"] for r in results}
    scores = np.array([_to_float(by_id.get(i)) for i in range(len(hypotheses))])
    return float(np.mean(scores)), scores


def _to_float(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
