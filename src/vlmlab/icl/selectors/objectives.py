"""Training objectives of the selectors: CE, ranking losses, rewards, RCE and GRPO.

All functions take plain tensors, so each can be checked by hand on a tiny example. Shapes:
B queries, G (or C) sequences per query (a "group"), S steps, K pool positions. Logits carry -inf
at positions that are not allowed at a step (padding, already chosen); those never produce NaN.

- `cross_entropy`: per-sequence mean step CE with label smoothing over the allowed positions only.
- `listwise_loss`: KL(softmax(beam score / τ) || softmax(sequence log-prob)) within each group.
- `pairwise_loss`: hinge `max(0, margin − (logp_better − logp_worse))` over ordered pairs.
- `rewards`: the reward modes (`REWARD_MODES`, upstream Lever-Plus names + `hybrid`) in one place.
- `group_advantages`: rewards z-scored (std floored, upstream 0.1) or rank-normalised within each group, clipped.
- `rce_loss`: reward-weighted CE, weights softmax(reward / τ) within each group.
- `grpo_loss`: PPO-clip surrogate on group advantages plus β · KL to a frozen reference.
- `adapt_kl_beta`: raise β when KL is above target, lower it when below.
- `stop_targets`: beams cut where they stop paying (the STOP variant's supervised targets).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from vlmlab.registry import Registry


def step_log_probs(logits: Tensor) -> Tensor:
    """log-softmax over positions; disallowed positions stay -inf."""
    return torch.log_softmax(logits, dim=-1)


def sequence_log_prob(logits: Tensor, sequences: Tensor) -> Tensor:
    """Sum over steps of log π(chosen position): logits [..., S, K], sequences [..., S] -> [...]."""
    return step_log_probs(logits).gather(-1, sequences.unsqueeze(-1)).squeeze(-1).sum(dim=-1)


def cross_entropy(logits: Tensor, sequences: Tensor, label_smoothing: float = 0.0) -> Tensor:
    """Per-sequence CE averaged over steps: logits [..., S, K], sequences [..., S] -> [...].

    Label smoothing spreads ε over the positions allowed at that step (never over padding or
    already chosen items, whose log-probability is -inf).
    """
    logp = step_log_probs(logits)
    nll = -logp.gather(-1, sequences.unsqueeze(-1)).squeeze(-1)
    if label_smoothing > 0:
        allowed = torch.isfinite(logits)
        smooth = -(logp.masked_fill(~allowed, 0.0).sum(-1) / allowed.sum(-1).clamp(min=1))
        nll = (1.0 - label_smoothing) * nll + label_smoothing * smooth
    return nll.mean(dim=-1)


def stop_targets(positions: Tensor, step_scores: Tensor, min_gain: float, stop_index: int) -> tuple[Tensor, Tensor]:
    """Beams cut to the prefix worth its picks, then STOP: the STOP variant's supervised targets.

    A beam's first L picks gained Σ step_scores[:L] InfoScore (P(y|prefix⊕x) − P(y|x), telescoping);
    L maximises that minus `min_gain` per pick (L = 0..S, ties to the shorter prefix), and the steps
    from L on become `stop_index`.

    Args:
        positions: long [..., S] picks in selection order.
        step_scores: float [..., S] each pick's marginal InfoScore.
        min_gain: what a pick must gain to be kept.
        stop_index: the STOP position (the pool width K).

    Returns:
        (targets long [..., S], the kept prefix's Σ step_scores[:L] − L·min_gain [...]).
    """
    s = positions.shape[-1]
    steps = torch.arange(s + 1, dtype=step_scores.dtype)
    gained = torch.cat([torch.zeros_like(step_scores[..., :1]), step_scores.cumsum(dim=-1)], dim=-1) - min_gain * steps
    keep = gained.argmax(dim=-1)  # the first maximum: ties go to the shorter prefix
    targets = torch.where(torch.arange(s) < keep[..., None], positions, torch.full_like(positions, stop_index))
    return targets, gained.gather(-1, keep[..., None]).squeeze(-1)


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp(min=1.0)


def listwise_loss(seq_logp: Tensor, scores: Tensor, mask: Tensor, temperature: float = 1.0) -> Tensor:
    """KL(target || model) per group, averaged over groups with at least two sequences.

    Args:
        seq_logp: [B, G] sequence log-probabilities under the model.
        scores: [B, G] beam scores (higher is better).
        mask: bool [B, G] valid sequences.
        temperature: τ of the target softmax(scores / τ).
    """
    neg = torch.finfo(seq_logp.dtype).min
    target = torch.softmax((scores / temperature).masked_fill(~mask, neg), dim=-1)
    model = torch.log_softmax(seq_logp.masked_fill(~mask, neg), dim=-1)
    log_target = torch.log(target.clamp(min=1e-12))
    kl = (target * (log_target - model)).masked_fill(~mask, 0.0).sum(dim=-1)
    return masked_mean(kl, mask.sum(dim=-1) >= 2)


def pairwise_loss(seq_logp: Tensor, scores: Tensor, mask: Tensor, margin: float = 1.0) -> Tensor:
    """Mean hinge over pairs (i, j) of a group with score_i > score_j: max(0, m − (lp_i − lp_j))."""
    better = (scores[:, :, None] > scores[:, None, :]) & mask[:, :, None] & mask[:, None, :]
    hinge = torch.relu(margin - (seq_logp[:, :, None] - seq_logp[:, None, :]))
    return masked_mean(hinge, better)


@dataclass(frozen=True)
class RewardInputs:
    """What rl-data knows about each candidate, as [B, C] float tensors (NaN where unknown).

    Attributes:
        correct: 1.0 where `vqa_correct`, else 0.0.
        acc: `vqa_acc_score` in [0, 1].
        beam_score: the candidate's InfoScore (beams: from the search; sampled: scored by rl-data).
        gt_prob: `vqa_gt_prob`, P(ground-truth answer | sequence, query) under the scorer.
        rel: `vqa_rel_score`, closeness of the answer to the human answers; `rel_weight` its weight.
    """

    correct: Tensor
    acc: Tensor
    beam_score: Tensor
    gt_prob: Tensor | None = None
    rel: Tensor | None = None
    rel_weight: float = 0.1


def _need(values: Tensor | None, name: str, mode: str) -> Tensor:
    if values is None or bool(torch.isnan(values).any()):
        raise ValueError(
            f"reward mode {mode!r} needs `{name}` for every candidate but some have none; "
            "re-run `vlmlab icl rl-data` (it records it) or choose another reward_mode"
        )
    return values


# name -> reward(inputs, hard_weight, soft_weight, infoscore_weight). The upstream names and formulas
# are Lever-Plus `compute_reward_for_candidate`; `hybrid` is vlmlab's own; `legacy` is upstream's
# alpha · quality + beta · correctness with quality = the InfoScore (alpha = infoscore_weight) and 0/1
# correctness (beta = hard_weight).
_REWARD_FORMULAS: dict[str, Callable[[RewardInputs, float, float, float], Tensor]] = {
    "hard_plus_soft": lambda r, h, s, i: h * r.correct + s * r.acc,
    "hard_plus_soft_v2": lambda r, h, s, i: s * r.acc + 2.0 * h * r.correct,
    "hard_only": lambda r, h, s, i: h * r.correct,
    "soft_only": lambda r, h, s, i: s * r.acc,
    "separated": lambda r, h, s, i: torch.where(r.correct > 0, 2.0 * h + s * r.acc, s * r.acc),
    "hard01_plus_gtprob": lambda r, h, s, i: h * r.correct + s * _need(r.gt_prob, "vqa_gt_prob", "hard01_plus_gtprob"),
    "hard01_plus_gtprob_separated": lambda r, h, s, i: torch.where(
        r.correct > 0, 2.0 * h + s * _need(r.gt_prob, "vqa_gt_prob", "hard01_plus_gtprob_separated"), s * r.gt_prob
    ),
    "hard_plus_gtprob_plus_rel": lambda r, h, s, i: h * r.correct + s * _need(r.gt_prob, "vqa_gt_prob", "hard_plus_gtprob_plus_rel")
    + r.rel_weight * (1.0 - r.correct) * _need(r.rel, "vqa_rel_score", "hard_plus_gtprob_plus_rel"),
    "hybrid": lambda r, h, s, i: h * r.correct + s * r.acc + i * _need(r.beam_score, "beam_score (InfoScore)", "hybrid"),
    "legacy": lambda r, h, s, i: h * r.correct + (i * _need(r.beam_score, "beam_score (InfoScore)", "legacy") if i else 0.0),
}
REWARD_MODES: Registry[Callable[[RewardInputs, float, float, float], Tensor]] = Registry(
    "reward_mode", _REWARD_FORMULAS, error=ValueError, cutoff=0.5,
    unknown=lambda mode, hint, names: f"unknown reward_mode {mode!r}{f' ({hint})' if hint else ''}; choose one of {', '.join(names)}",
)
REWARD_CLIP = 5.0  # upstream clips every reward to [-5, 5]


def check_reward_mode(mode: str) -> str:
    """`mode` if it is a reward mode, else a ValueError naming the closest one."""
    return REWARD_MODES.check(mode)


def rewards(
    correct: Tensor,
    acc: Tensor,
    beam_score: Tensor,
    mode: str = "hard_plus_soft",
    hard_weight: float = 1.0,
    soft_weight: float = 1.0,
    infoscore_weight: float = 1.0,
    gt_prob: Tensor | None = None,
    rel: Tensor | None = None,
    rel_weight: float = 0.1,
) -> Tensor:
    """Reward of each rl-data candidate under `mode` (see `REWARD_MODES`), clipped to ±`REWARD_CLIP`.

    - `hard_plus_soft`: hard_weight · correct + soft_weight · acc.
    - `separated`: 2 · hard_weight + soft_weight · acc if correct else soft_weight · acc, so every
      correct candidate outranks every wrong one by a gap.
    - `hybrid`: hard_plus_soft + infoscore_weight · InfoScore. Every candidate needs a real InfoScore
      (rl-data scores sampled sequences with the beam's scorer); none is imputed.
    - `hard01_plus_gtprob(_separated)`: as hard_plus_soft / separated with `vqa_gt_prob` as the soft part.
    - `hard_plus_gtprob_plus_rel`: h · correct + s · gt_prob + rel_weight · (1 − correct) · relevance.

    Args:
        correct: [B, C] 1.0 where `vqa_correct`, else 0.0.
        acc: [B, C] `vqa_acc_score` in [0, 1].
        beam_score: [B, C] InfoScore, NaN where none.
        gt_prob: [B, C] `vqa_gt_prob`, NaN where none (or None).

    Raises:
        ValueError: an unknown mode (with the closest name), or a mode whose input is missing.
    """
    out = REWARD_MODES.get(mode)(RewardInputs(correct, acc, beam_score, gt_prob, rel, rel_weight), hard_weight, soft_weight, infoscore_weight)
    return out.clamp(-REWARD_CLIP, REWARD_CLIP)


def group_advantages(
    values: Tensor, mask: Tensor, clip: float = 5.0, std_floor: float = 0.1, normalization: str = "zscore"
) -> Tensor:
    """Group-relative advantages over the valid members of each group, clipped to ±`clip`.

    `zscore` (upstream's default): (r − mean) / max(std, std_floor) with the sample (n − 1) std, as
    upstream's `torch.std`. The floor (upstream 0.1) keeps reward noise noise: rewards
    [3e-5, 1e-5, 0, 0] give advantages ~[2e-4, 0, −1e-4, −1e-4], not ±1. `rank` (upstream
    `use_rank`): 1 − 2 · rank / (n − 1), best member 1, worst −1 (ties keep their order).
    A group with one member has advantage 0; invalid members get 0.
    """
    m = mask.to(values.dtype)
    count = m.sum(dim=-1, keepdim=True)
    if normalization == "rank":
        keyed = values.masked_fill(~mask, float("-inf"))
        ranks = keyed.argsort(dim=-1, descending=True, stable=True).argsort(dim=-1).to(values.dtype)
        adv = torch.where(count > 1, 1.0 - 2.0 * ranks / (count - 1).clamp(min=1.0), torch.zeros_like(values))
        return (adv * m).clamp(-clip, clip)
    if normalization != "zscore":
        raise ValueError(f"advantage normalization must be zscore or rank, got {normalization!r}")
    mean = (values * m).sum(dim=-1, keepdim=True) / count.clamp(min=1.0)
    var = (((values - mean) * m) ** 2).sum(dim=-1, keepdim=True) / (count - 1).clamp(min=1.0)
    std = var.sqrt().clamp(min=std_floor) if std_floor > 0 else var.sqrt()
    z = torch.where((count > 1) & (std > 0), (values - mean) / std.clamp(min=1e-12), torch.zeros_like(values))
    return (z * m).clamp(-clip, clip)


def rce_temperature(step: int, total_steps: int, start: float, end: float) -> float:
    """Linear annealing of the RCE temperature from `start` (step 0) to `end` (last step)."""
    if total_steps <= 1:
        return end
    frac = min(max(step / (total_steps - 1), 0.0), 1.0)
    return start + (end - start) * frac


def rce_loss(seq_ce: Tensor, reward: Tensor, mask: Tensor, temperature: float) -> Tensor:
    """Reward-weighted CE: Σ_i softmax(r / τ)_i · CE_i within each group, mean over groups.

    Args:
        seq_ce: [B, C] per-sequence CE.
        reward: [B, C] rewards.
        mask: bool [B, C] valid candidates.
    """
    neg = torch.finfo(reward.dtype).min
    weights = torch.softmax((reward / temperature).masked_fill(~mask, neg), dim=-1).masked_fill(~mask, 0.0)
    per_group = (weights * seq_ce.masked_fill(~mask, 0.0)).sum(dim=-1)
    return masked_mean(per_group, mask.any(dim=-1))


def sequence_kl(logits: Tensor, ref_logits: Tensor) -> Tensor:
    """Exact Σ_steps KL(π(·|step) || π_ref(·|step)) along each teacher-forced sequence: [..., S, K] -> [...]."""
    logp, ref_logp = step_log_probs(logits), step_log_probs(ref_logits)
    allowed = torch.isfinite(logits) & torch.isfinite(ref_logits)
    diff = torch.where(allowed, logp - ref_logp, torch.zeros_like(logp))
    return (logp.exp() * diff).sum(dim=-1).sum(dim=-1)


def grpo_loss(
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    mask: Tensor,
    clip_epsilon: float,
    kl: Tensor,
    beta: float,
) -> tuple[Tensor, dict[str, float]]:
    """PPO-clip surrogate on group-relative advantages plus a KL penalty to the reference model.

    loss = −mean(min(ρ·A, clip(ρ, 1−ε, 1+ε)·A)) + β · mean(KL), ρ = exp(logp − old_logp).

    Args:
        logp: [B, C] sequence log-probs under the policy being trained.
        old_logp: [B, C] the same under the policy that the batch was collected with (no grad).
        advantages: [B, C] from `group_advantages`.
        mask: bool [B, C].
        clip_epsilon: ε.
        kl: [B, C] `sequence_kl` to the frozen reference (supervised) model.
        beta: KL weight β.

    Returns:
        (loss, stats) with stats `policy_loss`, `kl`, `ratio_mean`, `clip_fraction`.
    """
    ratio = torch.exp(logp - old_logp.detach())
    clipped = ratio.clamp(1.0 - clip_epsilon, 1.0 + clip_epsilon)
    surrogate = torch.minimum(ratio * advantages, clipped * advantages)
    policy = -masked_mean(surrogate, mask)
    kl_mean = masked_mean(kl, mask)
    loss = policy + beta * kl_mean
    with torch.no_grad():
        was_clipped = ((ratio - clipped).abs() > 0) & mask
        stats = {
            "policy_loss": float(policy),
            "kl": float(kl_mean),
            "ratio_mean": float(masked_mean(ratio, mask)),
            "clip_fraction": float(was_clipped.sum() / mask.sum().clamp(min=1)),
        }
    return loss, stats


def adapt_kl_beta(
    beta: float,
    kl: float,
    target_min: float,
    target_max: float,
    factor: float = 1.5,
    beta_min: float = 1e-3,
    beta_max: float = 10.0,
) -> float:
    """Adaptive β: × factor when KL > target_max, ÷ factor when KL < target_min, kept in [min, max]."""
    if kl > target_max:
        beta *= factor
    elif kl < target_min:
        beta /= factor
    return min(max(beta, beta_min), beta_max)
