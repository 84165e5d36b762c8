"""`vlmlab score caption` vs pycocoevalcap, whole-process time, run alternately, medians of repeats.

Run: .venv/bin/python benchmarks/bench_caption_metrics.py [--items 5000] [--refs 5] [--repeats 3] [--quic PATH]
     [--sets all,no-meteor] [--models 1] [--cli] [--floor]

Each timed command is a fresh Python process that reads the same JSONL files and prints its scores:
ours is a script calling `score_captions` (or, with `--cli`, `python -m vlmlab score caption`): one
PTB JVM, numpy BLEU/ROUGE-L/CIDEr, METEOR's jar on a paraphrase table cut to the run (1-2 JVMs,
overlapped with the numpy metrics); pycocoevalcap's is a script doing what `COCOEvalCap.evaluate`
does (PTBTokenizer for references and predictions, then Bleu, Meteor, Rouge, Cider; SPICE is left
out on both sides). The paraphrase-table index that ours builds once per installed table
(`$VLMLAB_HOME/meteor`) is built before the timed runs and its build time printed. The two alternate (ours, theirs, ours, theirs, ...) so that a change in the load of
a shared machine hits both; the table gives each repeat's ratio and the median ratio, the load
average before and after, and the largest score difference (equality: BLEU/ROUGE/CIDEr to 1e-9,
METEOR to 1e-6).

`--floor` then times METEOR's jar by itself on the run's SCORE lines and cut table (start-up, then
all lines, C1 JIT, one JVM): the work no wrapper can remove, and so the best ratio possible.

Data: `--items` x `--refs` synthetic captions, or with `--quic PATH` (a QuIC-360 TSV: url, query,
annotation) the real QuIC-360 size and text: one item per (url, query) pair, its annotations as
references and, as prediction, an annotation of the next pair. `--models N` scores N prediction
sets against the same references in ONE process per side (a multi-model study): ours keeps one
METEOR JVM and tokenises the references once; pycocoevalcap runs `evaluate` N times.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import statistics
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

METRICS = {"all": ["BLEU", "METEOR", "ROUGE-L", "CIDEr"], "no-meteor": ["BLEU", "ROUGE-L", "CIDEr"]}

# both timed scripts read the same files the same way
READ_FILES = r"""
import json, sys
ref_path, metrics, pred_paths = sys.argv[1], sys.argv[2].split(","), sys.argv[3:]
refs = {}
for line in open(ref_path):
    r = json.loads(line); refs[r["id"]] = r["references"]


def predictions(pred_path):
    preds = {}
    for line in open(pred_path):
        r = json.loads(line); preds[r["id"]] = r["prediction"]
    return preds
"""

PYCOCO_SCRIPT = READ_FILES + r"""
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.rouge.rouge import Rouge
from pycocoevalcap.cider.cider import Cider
results = []
for pred_path in pred_paths:
    preds = predictions(pred_path)
    # COCOEvalCap.evaluate: tokenise, build every scorer (Meteor() starts its JVM here), then score in order
    tok = PTBTokenizer()
    gts = tok.tokenize({k: [{"caption": c} for c in v] for k, v in refs.items()})
    res = tok.tokenize({k: [{"caption": preds[k]}] for k in refs})
    scorers = [(Bleu(4), "BLEU")]
    if "METEOR" in metrics:
        from pycocoevalcap.meteor.meteor import Meteor
        scorers.append((Meteor(), "METEOR"))
    scorers += [(Rouge(), "ROUGE-L"), (Cider(), "CIDEr")]
    out = {}
    for scorer, name in scorers:
        score, _ = scorer.compute_score(gts, res, verbose=0) if name == "BLEU" else scorer.compute_score(gts, res)
        if name == "BLEU":
            out.update({f"BLEU-{k+1}": score[k] for k in range(4)})
        else:
            out[name] = float(score)
    results.append(out)
print(json.dumps(results))
"""

OURS_SCRIPT = READ_FILES + r"""
from vlmlab.metrics.caption import score_captions
print(json.dumps([score_captions(predictions(p), refs, metrics=metrics).scores for p in pred_paths]))
"""


def caption(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(6, 16))]
    words[0] = words[0].capitalize()
    text = " ".join(words)
    if rng.random() < 0.3:
        text = text.replace(" and ", ", and ")
    return text + rng.choice([".", "", " .", "!"])


def synthetic(n_items: int, n_refs: int, n_models: int, seed: int = 0) -> tuple[dict[str, list[str]], list[dict[str, str]]]:
    rng = random.Random(seed)
    refs = {f"img{i}": [caption(rng) for _ in range(n_refs)] for i in range(n_items)}
    return refs, [{k: caption(rng) for k in refs} for _ in range(n_models)]


def quic(path: Path, n_models: int) -> tuple[dict[str, list[str]], list[dict[str, str]]]:
    grouped: dict[str, list[str]] = {}
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            grouped.setdefault(f"{row['url']}|{row['query']}", []).append(row["annotation"])
    pairs = list(grouped)
    preds = [{p: grouped[pairs[(i + 1 + m) % len(pairs)]][i % len(grouped[pairs[(i + 1 + m) % len(pairs)]])] for i, p in enumerate(pairs)}
             for m in range(n_models)]
    return grouped, preds


def write(folder: Path, refs: dict[str, list[str]], preds: list[dict[str, str]]) -> tuple[Path, list[Path]]:
    ref_path = folder / "refs.jsonl"
    ref_path.write_text("".join(json.dumps({"id": k, "references": v}) + "\n" for k, v in refs.items()))
    pred_paths = []
    for m, p in enumerate(preds):
        path = folder / f"pred{m}.jsonl"
        path.write_text("".join(json.dumps({"id": k, "prediction": v}) + "\n" for k, v in p.items()))
        pred_paths.append(path)
    return ref_path, pred_paths


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str]) -> tuple[float, float, list[dict]]:
    """Wall time, CPU time (user+sys of the process and its JVMs) and the printed JSON."""
    cpu0, start = _child_cpu(), time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    elapsed, cpu = time.perf_counter() - start, _child_cpu() - cpu0
    if proc.returncode != 0:
        raise SystemExit(f"command failed: {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    out = proc.stdout.strip()
    return elapsed, cpu, json.loads(out if out[:1] in "{[" else out.splitlines()[-1])


TOLERANCE = {"METEOR": 1e-6}  # BLEU, ROUGE-L, CIDEr: 1e-9


def max_diff(ours: list[dict], ref: list[dict]) -> dict[str, float]:
    keys = ref[0].keys()
    return {k: max(abs(o[k] - r[k]) for o, r in zip(ours, ref)) for k in keys}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--refs", type=int, default=5)
    parser.add_argument("--quic", type=Path, default=None, help="a QuIC-360 TSV: use its size and text instead")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", type=int, default=1)
    parser.add_argument("--sets", default="all,no-meteor", help="comma list of: all, no-meteor")
    parser.add_argument("--cli", action="store_true", help="time ours as `python -m vlmlab score caption` (one model) instead of the API")
    parser.add_argument("--floor", action="store_true", help="also time the METEOR jar alone on the cut table (the part no wrapper can remove)")
    args = parser.parse_args()
    if args.cli and args.models != 1:
        raise SystemExit("--cli scores one model per process; use it with --models 1")
    refs, preds = quic(args.quic, args.models) if args.quic else synthetic(args.items, args.refs, args.models)
    size = f"{len(refs)} items, {sum(map(len, refs.values()))} references" + (f" (QuIC-360 {args.quic.name})" if args.quic else "")
    if "all" in args.sets.split(","):
        from vlmlab.metrics.meteor_index import paraphrase_index

        start = time.perf_counter()
        paraphrase_index()  # built once per installed table; every later process only maps it
        print(f"paraphrase-table index ready in {time.perf_counter() - start:.1f} s (built now if this is long)")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ref_path, pred_paths = write(folder, refs, preds)
        (folder / "pycoco.py").write_text(PYCOCO_SCRIPT)
        (folder / "ours.py").write_text(OURS_SCRIPT)
        load0 = os.getloadavg()
        side = "`vlmlab score caption`" if args.cli else "vlmlab.metrics.caption.score_captions"
        print(f"{size}, {args.models} model(s), {args.repeats} alternating repeats, ours = {side}; cpus {os.cpu_count()}, "
              f"load average before {load0[0]:.1f}")
        print(f"{'metrics':10} {'repeat':>6} {'ours wall':>9} {'coco wall':>9} {'ratio':>6} {'ours cpu':>8} {'coco cpu':>8} {'ratio':>6}")
        medians: dict[str, list[float]] = {}
        for name in args.sets.split(","):
            metrics = ",".join(METRICS[name])
            rows, diffs = [], {}
            for rep in range(args.repeats):
                if args.cli:
                    ow, oc, cli_out = timed([sys.executable, "-m", "vlmlab", "score", "caption", str(pred_paths[0]), str(ref_path), "--metrics", metrics])
                    ours = [cli_out] if isinstance(cli_out, dict) else cli_out
                else:
                    ow, oc, ours = timed([sys.executable, str(folder / "ours.py"), str(ref_path), metrics, *map(str, pred_paths)])
                rw, rc, ref = timed([sys.executable, str(folder / "pycoco.py"), str(ref_path), metrics, *map(str, pred_paths)])
                rows.append((ow, rw, oc, rc))
                diffs = {k: max(v, diffs.get(k, 0.0)) for k, v in max_diff(ours, ref).items()}
                print(f"{name:10} {rep + 1:6d} {ow:9.2f} {rw:9.2f} {rw / ow:5.1f}x {oc:8.2f} {rc:8.2f} {rc / oc:5.1f}x", flush=True)
            med = medians[name] = [statistics.median(c) for c in zip(*rows)]
            ratio = statistics.median(r[1] / r[0] for r in rows)
            cpu_ratio = statistics.median(r[3] / r[2] for r in rows)
            equal = all(v <= TOLERANCE.get(k, 1e-9) for k, v in diffs.items())
            print(f"{name:10} {'median':>6} {med[0]:9.2f} {med[1]:9.2f} {ratio:5.1f}x {med[2]:8.2f} {med[3]:8.2f} {cpu_ratio:5.1f}x   "
                  f"{'equal' if equal else 'NOT EQUAL'}: max|diff| " + ", ".join(f"{k} {v:.1e}" for k, v in diffs.items()))
        if args.floor:
            meteor_floor(folder, refs, preds[0], args.repeats, medians)
        print(f"load average after {os.getloadavg()[0]:.1f}")


def _one_line(text: str) -> str:
    return " ".join(text.splitlines())


def meteor_floor(folder: Path, refs: dict[str, list[str]], preds: dict[str, str], repeats: int, medians: dict) -> None:
    """Time the jar by itself on the run's SCORE lines and cut table: its start-up, then its alignments."""
    from vlmlab.metrics.java import JAVA_UTF8, java_executable, pycocoevalcap_dir
    from vlmlab.metrics.meteor import _BASE_FLAGS, _score_line, _sent_hypothesis
    from vlmlab.metrics.meteor_index import paraphrase_index
    from vlmlab.metrics.meteor_table import kept_entries, write_table
    from vlmlab.metrics.ptb import ptb_tokenize

    ids = list(refs)
    tok = ptb_tokenize([preds[i] for i in ids] + [r for i in ids for r in refs[i]])
    hyps, ref_lists, pos = tok[: len(ids)], [], len(ids)
    for i in ids:
        ref_lists.append(tok[pos : pos + len(refs[i])])
        pos += len(refs[i])
    lines = [_score_line(h, r) for h, r in zip(hyps, ref_lists)]
    table = folder / "cut.gz"
    write_table(paraphrase_index(), kept_entries(paraphrase_index(), [_sent_hypothesis(h) for h in hyps], ref_lists), table)
    (folder / "one.txt").write_text(lines[0] + "\n")
    (folder / "all.txt").write_text("".join(line + "\n" for line in lines))
    jar = [java_executable(), *JAVA_UTF8, "-XX:TieredStopAtLevel=1", *_BASE_FLAGS, "-jar", "meteor-1.5.jar", "-", "-",
           "-stdio", "-l", "en", "-norm", "-a", str(table)]
    starts, totals = [], []
    for _ in range(repeats):
        for name, out in (("one.txt", starts), ("all.txt", totals)):
            cpu0 = _child_cpu()
            with open(folder / name, "rb") as f:
                subprocess.run(jar, stdin=f, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
                               cwd=pycocoevalcap_dir() / "meteor")
            out.append(_child_cpu() - cpu0)
    # the parts of ours without METEOR that are not ours either: the interpreter with numpy, and the tokenizer JVM
    (folder / "texts.txt").write_text("\n".join(_one_line(t) for t in [preds[i] for i in ids] + [r for i in ids for r in refs[i]]))
    ptb_cmd = [java_executable(), *JAVA_UTF8, "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-cp",
               str(pycocoevalcap_dir() / "tokenizer" / "stanford-corenlp-3.4.1.jar"), "edu.stanford.nlp.process.PTBTokenizer",
               "-preserveLines", "-lowerCase", "-encoding", "UTF-8"]
    imports, ptbs = [], []
    for _ in range(repeats):
        imports.append(timed([sys.executable, "-c", "import vlmlab.metrics.caption; print('[]')"])[1])
        cpu0 = _child_cpu()
        with open(folder / "texts.txt", "rb") as f:
            subprocess.run(ptb_cmd, stdin=f, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        ptbs.append(_child_cpu() - cpu0)
    imp, ptb_cpu = statistics.median(imports), statistics.median(ptbs)
    if "no-meteor" in medians:
        rest = medians["no-meteor"][2] - imp - ptb_cpu
        print(f"ours without METEOR {medians['no-meteor'][2]:.2f} CPU-s = Python with vlmlab's imports {imp:.2f} + PTB tokenizer JVM "
              f"{ptb_cpu:.2f} + reading the files, BLEU, ROUGE-L, CIDEr {rest:.2f}; best CPU ratio without our own work "
              f"{medians['no-meteor'][3] / (imp + ptb_cpu):.1f}x (pycocoevalcap {medians['no-meteor'][3]:.2f} CPU-s)")
    start, total = statistics.median(starts), statistics.median(totals)
    pairs = sum(map(len, ref_lists))
    print(f"METEOR jar alone on the cut table (C1, 1 JVM, medians of {repeats}): start-up {start:.2f} CPU-s, "
          f"alignments {total - start:.2f} CPU-s ({pairs} hypothesis-reference pairs, {1000 * (total - start) / pairs:.2f} ms each)")
    if "all" in medians and "no-meteor" in medians:
        floor = medians["no-meteor"][2] + total
        print(f"CPU floor for ours with METEOR = ours without METEOR {medians['no-meteor'][2]:.2f} + jar {total:.2f} = {floor:.2f} CPU-s; "
              f"best CPU ratio {medians['all'][3] / floor:.1f}x (pycocoevalcap {medians['all'][3]:.2f} CPU-s); "
              f"wall on 2 idle cores at best ~{medians['no-meteor'][0] + start + (total - start) / 2:.2f} s")


if __name__ == "__main__":
    main()
