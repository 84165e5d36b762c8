"""`SelectorData`: anchors, their OWN candidate pools, beam labels and RL candidates as tensors.

Built from the outputs of the earlier icl stages:

- index: `<run>/embeddings/{text,image}.npy` (float32 [M, D], L2-normalised) and
  `<run>/embeddings/ids.json` (support question ids in row order);
- beams: `beams.jsonl`, one line per anchor with its `pool` (support ids) and `beams` (best first);
- rl-data (v4 only): `rl.jsonl`, one line per anchor with scored `candidates`.

Sequences are kept in SELECTION order, the order the beam search chose them: a `left` beam puts
each new ICD in front, so its prompt order is the reverse (the first pick sits next to the query).
A selector learns to pick in selection order, and the eval stage lays its picks out as the beam
did (checkpoint meta `order`); learning prompt order instead would teach the first step the least useful, last-added ICD.

Every label is a position in the anchor's own pool. The files carry both the ICD ids and their
positions; we check that `pool[position] == id` for every ICD, so a label can never silently point
at the wrong item (upstream used a fixed pool and `index % K`). Pools are stored as rows into the
support embedding matrix, so memory is O(N·K) integers, not O(N·K·D) floats.

Example::

    data = SelectorData.from_run(index_dir, beams_path, rl_path, dataset="okvqa", modality="text")
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import yaml
from torch import Tensor

from vlmlab.errors import DataError
from vlmlab.icl.selectors.fingerprint import DataFingerprint, selector_provenance  # noqa: F401  (re-exported)
from vlmlab.icl.selectors.records import (
    Modality,
    anchor_and_pool,
    load_index_embeddings,
    number,
    read_jsonl,
    required,
    sequence_positions,
)


def selection_order(prompt_positions: list[int], order: str) -> list[int]:
    """Prompt order -> the order a beam search of `order` chose them (its own inverse)."""
    return list(reversed(prompt_positions)) if order == "left" else list(prompt_positions)


@dataclass
class SelectorData:
    """Training/eval tensors for selectors; N anchors, pools padded to K, G beams, C RL candidates, S shots.

    Attributes:
        anchor_ids: anchor question ids, row order of every tensor below.
        query_emb: float32 [N, D] embedding of each anchor.
        support_ids: index ids, row order of `support_emb`.
        support_emb: float32 [M, D].
        pool_rows: long [N, K] rows of `support_emb` forming each anchor's own pool (-1 = padding).
        pool_mask: bool [N, K] True where the pool has an item.
        beam_positions: long [N, G, S] ICD positions (in the anchor's pool), selection order, best beam first.
        beam_mask: bool [N, G] True where a beam exists.
        beam_cumulative / beam_marginal: float32 [N, G] beam scores (0 where no beam).
        beam_steps: float32 [N, G, S] or None; each step's marginal InfoScore in selection order (`step_scores`),
            NaN where a beam has none (imported Lever-LM beams); what STOP targets are cut from.
        rl_positions: long [N, C, S] or None; RL candidate sequences as pool positions (selection order).
        rl_mask: bool [N, C] or None.
        rl_correct / rl_acc: float32 [N, C] or None; `vqa_correct` as 0/1 and `vqa_acc_score`.
        rl_beam_score: float32 [N, C] or None; NaN where the candidate had no beam score.
        rl_gt_prob / rl_rel: float32 [N, C] or None; `vqa_gt_prob` / `vqa_rel_score`, NaN where not recorded.
        fingerprint: what the data is, for checkpoints.
        order: the beam search's `order` (`left`: prompt order is selection order reversed).
    """

    anchor_ids: list[str]
    query_emb: Tensor
    support_ids: list[str]
    support_emb: Tensor
    pool_rows: Tensor
    pool_mask: Tensor
    beam_positions: Tensor
    beam_mask: Tensor
    beam_cumulative: Tensor
    beam_marginal: Tensor
    fingerprint: DataFingerprint
    order: str = "right"
    rl_positions: Tensor | None = None
    rl_mask: Tensor | None = None
    rl_correct: Tensor | None = None
    rl_acc: Tensor | None = None
    rl_beam_score: Tensor | None = None
    rl_gt_prob: Tensor | None = None
    rl_rel: Tensor | None = None
    beam_steps: Tensor | None = None

    def __len__(self) -> int:
        return len(self.anchor_ids)

    @property
    def shots(self) -> int:
        return int(self.beam_positions.shape[-1])

    @property
    def pool_size(self) -> int:
        return int(self.pool_rows.shape[1])

    @property
    def embedding_dim(self) -> int:
        return int(self.support_emb.shape[1])

    @property
    def has_rl(self) -> bool:
        return self.rl_positions is not None

    def pool_ids(self, row: int) -> list[str]:
        """The support ids of anchor `row`'s pool, in position order."""
        return [self.support_ids[int(r)] for r in self.pool_rows[row] if int(r) >= 0]

    def pool_embeddings(self, rows: Tensor) -> Tensor:
        """float32 [b, K, D] pool embeddings of anchors `rows` (zeros at padding)."""
        idx = self.pool_rows[rows]
        emb = self.support_emb[idx.clamp(min=0)]
        return emb * (idx >= 0).unsqueeze(-1).to(emb.dtype)

    def subset(self, rows: Sequence[int] | Tensor) -> "SelectorData":
        """The same data restricted to anchors `rows` (support set and fingerprint unchanged)."""
        idx = torch.as_tensor(rows, dtype=torch.long)
        pick = lambda t: None if t is None else t[idx]  # noqa: E731
        return replace(
            self,
            anchor_ids=[self.anchor_ids[int(i)] for i in idx],
            query_emb=self.query_emb[idx],
            pool_rows=self.pool_rows[idx],
            pool_mask=self.pool_mask[idx],
            beam_positions=self.beam_positions[idx],
            beam_mask=self.beam_mask[idx],
            beam_cumulative=self.beam_cumulative[idx],
            beam_marginal=self.beam_marginal[idx],
            beam_steps=pick(self.beam_steps),
            rl_positions=pick(self.rl_positions),
            rl_mask=pick(self.rl_mask),
            rl_correct=pick(self.rl_correct),
            rl_acc=pick(self.rl_acc),
            rl_beam_score=pick(self.rl_beam_score),
            rl_gt_prob=pick(self.rl_gt_prob),
            rl_rel=pick(self.rl_rel),
        )

    @classmethod
    def from_records(
        cls,
        beams: Sequence[dict[str, Any]],
        support_ids: Sequence[str],
        support_emb: np.ndarray,
        *,
        rl: Sequence[dict[str, Any]] | None = None,
        query_ids: Sequence[str] | None = None,
        query_emb: np.ndarray | None = None,
        dataset: str = "",
        modality: str = "text",
        icd_answers: bool = False,
        beams_source: str = "beams.jsonl",
        rl_source: str = "rl.jsonl",
        order: str = "right",
        provenance: dict[str, Any] | None = None,
    ) -> "SelectorData":
        """Build from parsed `beams.jsonl` (and optionally `rl.jsonl`) records.

        Args:
            beams: one dict per anchor: `{"id", "pool", "beams": [{"ids", "positions", "cumulative",
                "marginal", ...}]}`, best beam first.
            support_ids / support_emb: the index (ids in row order, float32 [M, D]).
            rl: optional rl-data records `{"id", "pool", "candidates": [...]}`; matched to anchors
                by id, positions re-mapped into the anchor's beam pool by id. Candidates with
                `status: error` (the scorer failed) are left out rather than given reward 0.
            query_ids / query_emb: embeddings for anchors that are not in the index; anchors are
                looked up here first, then in the index.
            dataset / modality / icd_answers: recorded in the fingerprint (`icd_answers`: `support_emb`
                embeds the items as demonstrations, so anchors need `query_emb`).
            beams_source / rl_source: file names used in error messages.
            order: the beam search's `order` for records without an `order` field (the beam stage
                writes one; `right` = prompt order is selection order).
            provenance: embedders and pools (`selector_provenance`), recorded in the fingerprint.

        Raises:
            DataError: naming the file, line and anchor for any malformed or inconsistent record.
        """
        support_emb = np.asarray(support_emb, dtype=np.float32)
        if support_emb.ndim != 2 or support_emb.shape[0] != len(support_ids):
            raise DataError(
                f"index embeddings have shape {support_emb.shape} but ids.json lists {len(support_ids)} ids; rebuild the index"
            )
        row_of = {qid: i for i, qid in enumerate(support_ids)}
        if len(row_of) != len(support_ids):
            raise DataError("index ids.json has duplicate ids; rebuild the index")
        extra_q: dict[str, int] = {}
        if query_ids is not None:
            if query_emb is None or len(query_ids) != len(query_emb):
                raise DataError("query_ids and query_emb must be given together with the same length")
            extra_q = {qid: i for i, qid in enumerate(query_ids)}

        anchors: list[str] = []
        pools: list[list[str]] = []
        beam_lists: list[list[tuple[list[int], float, float, list[float]]]] = []
        shots: int | None = None
        seen: set[str] = set()
        orders: set[str] = set()
        for line_no, rec in enumerate(beams, start=1):
            where = f"{beams_source} line {line_no}"
            anchor, pool = anchor_and_pool(rec, where, row_of)
            rec_order = str(rec.get("order", order))
            if rec_order not in ("left", "right"):
                raise DataError(f"{where} (anchor {anchor}): order must be 'left' or 'right', got {rec_order!r}")
            orders.add(rec_order)
            entries = rec.get("beams")
            if not isinstance(entries, list) or not entries:
                raise DataError(f"{where} (anchor {anchor}): 'beams' must be a non-empty list; re-run the beam stage")
            parsed = []
            for b, beam in enumerate(entries):
                positions = selection_order(sequence_positions(beam, pool, f"{where} (anchor {anchor}, beam {b})"), rec_order)
                shots = len(positions) if shots is None else shots
                if len(positions) != shots:
                    raise DataError(
                        f"{where} (anchor {anchor}, beam {b}): {len(positions)} ICDs but earlier beams have {shots}; all beams need the same shots"
                    )
                # imported Lever-LM beams carry no cumulative score (null): NaN, refused where a loss needs it
                cumulative = float("nan") if beam.get("cumulative", 0.0) is None else number(beam, "cumulative", where)
                steps = beam.get("step_scores")
                steps = [float(x) for x in steps] if isinstance(steps, list) and len(steps) == len(positions) else [float("nan")] * len(positions)
                parsed.append((positions, cumulative, number(beam, "marginal", where), steps))
            if anchor in seen:
                raise DataError(f"{where}: anchor {anchor} appears twice; keep one line per anchor")
            seen.add(anchor)
            anchors.append(anchor)
            pools.append(pool)
            beam_lists.append(parsed)
        if not anchors:
            raise DataError(f"{beams_source} has no anchors; run the beam stage first")
        assert shots is not None
        if len(orders) > 1:
            raise DataError(f"{beams_source} mixes beam orders {sorted(orders)}; train on beams of one search")
        order = orders.pop()

        rl_by_anchor: dict[str, list[tuple[list[int], float, float, float, float, float]]] = {}
        if rl is not None:
            pool_pos = {a: {qid: p for p, qid in enumerate(pool)} for a, pool in zip(anchors, pools)}
            for line_no, rec in enumerate(rl, start=1):
                where = f"{rl_source} line {line_no}"
                anchor, pool = anchor_and_pool(rec, where, row_of)
                if anchor not in pool_pos:
                    continue  # an anchor without beams has no supervised labels; RL alone would start untrained
                cands = rec.get("candidates")
                if not isinstance(cands, list):
                    raise DataError(f"{where} (anchor {anchor}): 'candidates' must be a list; re-run the rl-data stage")
                items = []
                for c, cand in enumerate(cands):
                    if cand.get("status") == "error":
                        continue  # the scorer failed on it: no reward, never scored as a wrong answer
                    cw = f"{where} (anchor {anchor}, candidate {c})"
                    positions = selection_order(sequence_positions(cand, pool, cw), order)
                    if len(positions) != shots:
                        raise DataError(f"{cw}: {len(positions)} ICDs but the beams have {shots}")
                    try:
                        mapped = [pool_pos[anchor][pool[p]] for p in positions]
                    except KeyError as exc:
                        raise DataError(f"{cw}: ICD {exc.args[0]} is not in the anchor's pool in {beams_source}") from None
                    optional = [float("nan") if cand.get(k) is None else float(cand[k]) for k in ("beam_score", "vqa_gt_prob", "vqa_rel_score")]
                    items.append((mapped, float(bool(required(cand, "vqa_correct", cw))), number(cand, "vqa_acc_score", cw), *optional))
                rl_by_anchor[anchor] = items

        q_rows = []
        for anchor in anchors:
            if anchor in extra_q:
                q_rows.append(np.asarray(query_emb)[extra_q[anchor]])
            elif anchor in row_of:
                q_rows.append(support_emb[row_of[anchor]])
            else:
                raise DataError(
                    f"anchor {anchor} has no embedding: it is not in the index ids.json and no query embeddings were given"
                )
        n, k, g = len(anchors), max(len(p) for p in pools), max(len(b) for b in beam_lists)
        pool_rows = torch.full((n, k), -1, dtype=torch.long)
        beam_positions = torch.zeros((n, g, shots), dtype=torch.long)
        beam_mask = torch.zeros((n, g), dtype=torch.bool)
        cum = torch.zeros((n, g))
        mar = torch.zeros((n, g))
        step_scores = torch.full((n, g, shots), float("nan"))
        for i, (pool, blist) in enumerate(zip(pools, beam_lists)):
            pool_rows[i, : len(pool)] = torch.tensor([row_of[q] for q in pool])
            for j, (pos, c_score, m_score, steps) in enumerate(blist):
                beam_positions[i, j] = torch.tensor(pos)
                beam_mask[i, j] = True
                cum[i, j], mar[i, j] = c_score, m_score
                step_scores[i, j] = torch.tensor(steps)

        rl_fields: dict[str, Tensor | None] = {}
        if rl is not None:
            c_max = max((len(v) for v in rl_by_anchor.values()), default=0)
            rl_pos = torch.zeros((n, c_max, shots), dtype=torch.long)
            rl_mask = torch.zeros((n, c_max), dtype=torch.bool)
            rl_cor, rl_acc = torch.zeros((n, c_max)), torch.zeros((n, c_max))
            rl_bs, rl_gt, rl_rel = (torch.full((n, c_max), float("nan")) for _ in range(3))
            for i, anchor in enumerate(anchors):
                for j, (pos, cor, acc, bs, gt, rel) in enumerate(rl_by_anchor.get(anchor, [])):
                    rl_pos[i, j] = torch.tensor(pos)
                    rl_mask[i, j] = True
                    rl_cor[i, j], rl_acc[i, j], rl_bs[i, j], rl_gt[i, j], rl_rel[i, j] = cor, acc, bs, gt, rel
            rl_fields = dict(rl_positions=rl_pos, rl_mask=rl_mask, rl_correct=rl_cor, rl_acc=rl_acc, rl_beam_score=rl_bs, rl_gt_prob=rl_gt,
                             rl_rel=rl_rel)

        return cls(
            anchor_ids=anchors,
            query_emb=torch.from_numpy(np.stack(q_rows).astype(np.float32)),
            support_ids=list(support_ids),
            support_emb=torch.from_numpy(support_emb),
            pool_rows=pool_rows,
            pool_mask=pool_rows >= 0,
            beam_positions=beam_positions,
            beam_mask=beam_mask,
            beam_cumulative=cum,
            beam_marginal=mar,
            beam_steps=step_scores,
            fingerprint=DataFingerprint.from_ids(dataset, support_ids, support_emb.shape[1], modality, icd_answers, provenance),
            order=order,
            **rl_fields,
        )

    @classmethod
    def from_run(
        cls,
        index_dir: Path | str,
        beams_path: Path | str,
        rl_path: Path | str | None = None,
        *,
        dataset: str = "",
        modality: Modality = "text",
        icd_answers: bool = False,
        provenance: dict[str, Any] | None = None,
    ) -> "SelectorData":
        """Read the index run folder, `beams.jsonl` and optionally `rl.jsonl` into tensors.

        Args:
            index_dir: the index stage's run folder (holding `embeddings/`).
            beams_path: the beam stage's `beams.jsonl`.
            rl_path: the rl-data stage's `rl.jsonl` (needed for v4).
            dataset: dataset name recorded in the fingerprint.
            modality: `text`, `image`, or `text+image` (the two concatenated, D doubles).
            icd_answers: embed pool items as demonstrations (question + answer); anchors, like test
                queries, are embedded by their question alone.
            provenance: `{"embedders", "pool_sampler", "pool_k", "pool_mix_weights"}` of the runs; the
                embedding hash is added here from the matrix actually read.
        """
        ids, emb = load_index_embeddings(index_dir, modality, demonstrations=icd_answers)
        beam_config = Path(beams_path).parent / "config.yaml"  # the beam run's resolved config, for older files without `order`
        order = str((yaml.safe_load(beam_config.read_text(encoding="utf-8")) or {}).get("order", "right")) if beam_config.is_file() else "right"
        query = load_index_embeddings(index_dir, modality)[1] if icd_answers else None
        rl = read_jsonl(Path(rl_path)) if rl_path is not None else None
        return cls.from_records(
            read_jsonl(Path(beams_path)),
            ids,
            emb,
            rl=rl,
            query_ids=ids if icd_answers else None,
            query_emb=query,
            dataset=dataset,
            modality=modality,
            icd_answers=icd_answers,
            order=order,
            beams_source=str(beams_path),
            rl_source=str(rl_path),
            provenance=None if provenance is None else selector_provenance(
                provenance["embedders"], emb, provenance["pool_sampler"], provenance["pool_k"], provenance.get("pool_mix_weights")),
        )
