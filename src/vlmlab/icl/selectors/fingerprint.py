"""`DataFingerprint`: what a selector was trained on, recorded in its checkpoint and checked at eval.

Besides the ids and the embedding width, `provenance` (`selector_provenance`) records how the
embeddings and the pools were made: an embedder of the same width, or pools of another sampler,
are caught here rather than silently accepted.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np


@dataclass(frozen=True)
class DataFingerprint:
    """What a selector was trained on, stored next to its checkpoint and checked at eval.

    Attributes:
        dataset: the dataset name the caller gave (e.g. `okvqa`).
        support_ids_sha256: sha256 of the support ids in index row order.
        embedding_dim: width D of the embeddings the selector reads.
        modality: which index embeddings were used (`text`, `image` or `text+image`).
        icd_answers: ICDs embedded with their answers (`demo_text.npy`) rather than as bare questions;
            queries are always embedded without answers.
        provenance: how the embeddings and pools were made (`selector_provenance`): the embedders
            (names, options), sha256 of the embedding matrix, the pool sampler, K and mix weights.
            An embedder of the same width, or pools of another sampler, are caught here.
    """

    dataset: str
    support_ids_sha256: str
    embedding_dim: int
    modality: str
    icd_answers: bool = False
    provenance: dict[str, Any] | None = None

    @classmethod
    def from_ids(cls, dataset: str, support_ids: Sequence[str], embedding_dim: int, modality: str, icd_answers: bool = False,
                 provenance: dict[str, Any] | None = None) -> "DataFingerprint":
        """Fingerprint an index (the eval stage calls this to check a checkpoint fits its data)."""
        digest = hashlib.sha256("\n".join(support_ids).encode("utf-8")).hexdigest()
        return cls(dataset, digest, int(embedding_dim), modality, bool(icd_answers), provenance)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "support_ids_sha256": self.support_ids_sha256,
            "embedding_dim": self.embedding_dim,
            "modality": self.modality,
            "icd_answers": self.icd_answers,
            "provenance": self.provenance,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "DataFingerprint":
        return cls(str(raw["dataset"]), str(raw["support_ids_sha256"]), int(raw["embedding_dim"]), str(raw["modality"]),
                   bool(raw.get("icd_answers", False)), raw.get("provenance"))

    def mismatches(self, other: "DataFingerprint") -> list[str]:
        """Names of the fields that differ, as `field: mine != other` strings (provenance key by key)."""
        out = [
            f"{name}: {getattr(self, name)!r} != {getattr(other, name)!r}"
            for name in ("dataset", "support_ids_sha256", "embedding_dim", "modality", "icd_answers")
            if getattr(self, name) != getattr(other, name)
        ]
        if self.provenance is None and other.provenance is not None:
            out.append("provenance: not recorded (a checkpoint from before embedders and pools were recorded)")
        elif self.provenance is not None and other.provenance is not None:
            for key in sorted(set(self.provenance) | set(other.provenance)):
                mine, theirs = self.provenance.get(key), other.provenance.get(key)
                if mine != theirs:
                    out.append(f"{key}: {mine!r} != {theirs!r}")
        return out


def selector_provenance(embedders: dict[str, Any], support_emb: np.ndarray, sampler: str | None, k: int,
                        mix_weights: dict[str, float] | None) -> dict[str, Any]:
    """What a selector's inputs depend on besides the ids: embedders, the embedding matrix, the pools.

    Args:
        embedders: `{"text": name, "text_options": {...}, "image": name, "image_options": {...}}`.
        support_emb: the [M, D] matrix the selector reads (hashed as float32 bytes).
        sampler / k / mix_weights: how each query's pool is drawn (mix weights only count for `mix`);
            sampler None = unknown (beams imported from upstream files): eval then needs `--allow-mismatch`.
    """
    digest = hashlib.sha256(np.ascontiguousarray(support_emb, dtype=np.float32).tobytes()).hexdigest()
    return {"embedders": embedders, "embeddings_sha256": digest, "pool_sampler": sampler, "pool_k": int(k),
            "pool_mix_weights": dict(sorted((mix_weights or {}).items())) if sampler == "mix" else None}
