"""Test helpers (not fixtures): messy generated captions, pycocoevalcap's own scores, the QuIC-360 excerpt."""

from __future__ import annotations

import random

_WORDS = (
    "a an the man woman dog cat street city beach sky blue red green tall small two three 42 3.5 1,000 "
    "riding sitting walking near of on in with and is are people's it's don't U.S. e-mail well-known "
    "Café naïve über São Paulo 東京 猫 emoji😀 ½ ñandú Ünïcödé façade x2 #1 100% $5 @home AT&T "
    "panorama 360° equirectangular building buildings tree trees car cars"
).split()
_PUNCT = [",", ".", "!", "?", ";", ":", "...", "-", "--", "(", ")", '"', "'", "`", "''", "[", "]", "{", "}", "/", "&", "*"]


def messy_caption(rng: random.Random) -> str:
    """A caption with punctuation, case, unicode, numbers; sometimes empty, tiny or very long."""
    r = rng.random()
    if r < 0.02:
        return rng.choice(["", " ", "...", "!", "\t", "?!"])
    if r < 0.06:
        n = rng.randint(1, 2)
    elif r < 0.09:
        n = rng.randint(40, 110)
    else:
        n = rng.randint(3, 18)
    parts = []
    for _ in range(n):
        w = rng.choice(_WORDS)
        c = rng.random()
        if c < 0.15:
            w = w.upper()
        elif c < 0.35:
            w = w.capitalize()
        parts.append(w)
        if rng.random() < 0.12:
            parts.append(rng.choice(_PUNCT))
    sep = rng.choice([" ", " ", " ", "  ", " \n"])
    text = sep.join(parts)
    if rng.random() < 0.3:
        text += rng.choice([".", "!", " .", "?"])
    return text


def messy_dataset(n_items: int, seed: int) -> tuple[dict[str, str], dict[str, list[str]]]:
    """{id: prediction}, {id: [references]} with 1-6 references per item, ~1/3 overlapping text."""
    rng = random.Random(seed)
    preds, refs = {}, {}
    for i in range(n_items):
        item = f"img{i}"
        k = rng.randint(1, 6)
        rs = [messy_caption(rng) for _ in range(k)]
        if rng.random() < 0.35 and rs[0].strip():
            words = rs[0].split()
            rng.shuffle(words)
            pred = " ".join(words[: max(1, len(words) - rng.randint(0, 3))])
        else:
            pred = messy_caption(rng)
        preds[item] = pred
        refs[item] = rs
    return preds, refs


def pycoco_scores(preds: dict[str, str], refs: dict[str, list[str]], meteor: bool = False) -> dict:
    """pycocoevalcap's own scores (corpus and per item), the way COCOEvalCap.evaluate computes them."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    tok = PTBTokenizer()
    gts = tok.tokenize({k: [{"caption": c} for c in v] for k, v in refs.items()})
    res = tok.tokenize({k: [{"caption": preds[k]}] for k in refs})
    out = {}
    b, bs = Bleu(4).compute_score(gts, res, verbose=0)
    for k in range(4):
        out[f"BLEU-{k + 1}"] = (b[k], bs[k])
    out["ROUGE-L"] = Rouge().compute_score(gts, res)
    out["CIDEr"] = Cider().compute_score(gts, res)
    if meteor:
        from pycocoevalcap.meteor.meteor import Meteor

        m = Meteor()
        out["METEOR"] = m.compute_score(gts, res)
        del m
    out["_ids"] = list(gts.keys())
    return out


def read_quic_excerpt() -> tuple[list[tuple[str, str]], dict[str, list[str]]]:
    """Rows (pair id, caption) of the QuIC-360 excerpt and the references grouped per pair id."""
    import csv
    from pathlib import Path

    path = Path(__file__).parent / "files" / "quic360_test_excerpt.tsv"
    with path.open(newline="", encoding="utf-8") as f:
        rows = [(f"{r['url']}|{r['query']}", r["annotation"]) for r in csv.DictReader(f, delimiter="\t")]
    grouped: dict[str, list[str]] = {}
    for pair, caption in rows:
        grouped.setdefault(pair, []).append(caption)
    return rows, grouped
