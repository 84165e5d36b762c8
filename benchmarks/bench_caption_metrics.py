"""`vlmlab score caption` vs pycocoevalcap, whole-process wall time, 5,000 items x 5 references.

Run: .venv/bin/python benchmarks/bench_caption_metrics.py [--items 5000] [--refs 5] [--skip-meteor]

Both sides start a fresh Python process that reads the same JSONL files, PTB-tokenises (ours: one
JVM for everything; pycocoevalcap: one JVM for references and one for predictions) and scores.
Rows: BLEU+ROUGE-L+CIDEr-D, and METEOR alone. Prints wall and CPU time (user+sys of the process
and its JVMs; CPU time is the steadier number on a shared machine) and the speed-ups.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = (
    "a an the man woman child dog cat horse street city beach sky sea mountain blue red green white tall small "
    "two three several riding sitting walking standing near of on in with and is are under beside building "
    "tree car bus bicycle people group table panorama view road field river bridge park"
).split()

PYCOCO_SCRIPT = r"""
import json, sys
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
pred_path, ref_path, which = sys.argv[1:4]
preds = {}
for line in open(pred_path):
    r = json.loads(line); preds[r["id"]] = r["prediction"]
refs = {}
for line in open(ref_path):
    r = json.loads(line); refs[r["id"]] = r["references"]
tok = PTBTokenizer()
gts = tok.tokenize({k: [{"caption": c} for c in v] for k, v in refs.items()})
res = tok.tokenize({k: [{"caption": preds[k]}] for k in refs})
out = {}
if which == "ngram":
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.cider.cider import Cider
    b, _ = Bleu(4).compute_score(gts, res, verbose=0)
    out.update({f"BLEU-{k+1}": b[k] for k in range(4)})
    out["ROUGE-L"] = Rouge().compute_score(gts, res)[0]
    out["CIDEr"] = float(Cider().compute_score(gts, res)[0])
else:
    from pycocoevalcap.meteor.meteor import Meteor
    out["METEOR"] = Meteor().compute_score(gts, res)[0]
print(json.dumps(out))
"""


def caption(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(6, 16))]
    words[0] = words[0].capitalize()
    text = " ".join(words)
    if rng.random() < 0.3:
        text = text.replace(" and ", ", and ")
    return text + rng.choice([".", "", " .", "!"])


def make_files(folder: Path, n_items: int, n_refs: int, seed: int = 0) -> tuple[Path, Path]:
    rng = random.Random(seed)
    pred, refs = folder / "pred.jsonl", folder / "refs.jsonl"
    with pred.open("w") as fp, refs.open("w") as fr:
        for i in range(n_items):
            rs = [caption(rng) for _ in range(n_refs)]
            fr.write(json.dumps({"id": f"img{i}", "references": rs}) + "\n")
            fp.write(json.dumps({"id": f"img{i}", "prediction": caption(rng)}) + "\n")
    return pred, refs


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str]) -> tuple[float, float, dict]:
    """Wall time, CPU time (user+sys of the process and its JVMs) and the printed JSON."""
    cpu0, start = _child_cpu(), time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    elapsed, cpu = time.perf_counter() - start, _child_cpu() - cpu0
    if proc.returncode != 0:
        raise SystemExit(f"command failed: {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    out = proc.stdout.strip()
    return elapsed, cpu, json.loads(out if out.startswith("{") and out.endswith("}") else out.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--refs", type=int, default=5)
    parser.add_argument("--skip-meteor", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        pred, refs = make_files(folder, args.items, args.refs)
        script = folder / "pycoco_score.py"
        script.write_text(PYCOCO_SCRIPT)
        ours_cmd = [sys.executable, "-m", "vlmlab", "score", "caption", str(pred), str(refs)]
        rows = []
        ours_w, ours_c, ours = timed(ours_cmd + ["--metrics", "BLEU,ROUGE-L,CIDEr"])
        ref_w, ref_c, ref = timed([sys.executable, str(script), str(pred), str(refs), "ngram"])
        diff = max(abs(ours[k] - ref[k]) for k in ref)
        rows.append(("BLEU-1..4 + ROUGE-L + CIDEr-D", ours_w, ref_w, ours_c, ref_c, diff))
        if not args.skip_meteor:
            ours_w, ours_c, ours = timed(ours_cmd + ["--metrics", "METEOR"])
            ref_w, ref_c, ref = timed([sys.executable, str(script), str(pred), str(refs), "meteor"])
            rows.append(("METEOR", ours_w, ref_w, ours_c, ref_c, abs(ours["METEOR"] - ref["METEOR"])))
    print(f"{args.items} items x {args.refs} references, whole process (python + JVMs); wall and CPU seconds")
    print(f"{'metrics':30} {'ours wall':>9} {'coco wall':>9} {'speed-up':>8} {'ours cpu':>9} {'coco cpu':>9} {'speed-up':>8} {'max|diff|':>9}")
    for name, ow, rw, oc, rc, diff in rows:
        print(f"{name:30} {ow:9.2f} {rw:9.2f} {rw / ow:7.1f}x {oc:9.2f} {rc:9.2f} {rc / oc:7.1f}x {diff:9.1e}")


if __name__ == "__main__":
    main()
