"""`train_selector`: train one selector from `SelectorData`, log curves, save a strict checkpoint.

The story, in order:

1. check the data fits the config (shots, embedding width, pool size, rl data for v4);
2. split anchors into train and held-out (seeded by `data_seed`);
3. supervised epochs: CE on the best `ce_beams` beams, plus (v3/v4) a listwise or pairwise
   ranking loss over all beams of each anchor;
4. v4 only: RCE epochs (reward-weighted CE over rl-data candidates, temperature annealed), then
   GRPO epochs (PPO-clip on group z-scored advantages, exact per-step KL to the frozen supervised
   model, i.e. a copy taken after step 3 and before RCE, adaptive β; dropout off so that ratios
   compare like with like);
5. after every epoch, held-out top-1 / hit@5 / NDCG@10 / MRR (see `metrics.py`), then a resume
   state in `out_dir/resume/` (see "Resume" below);
6. write `selector.safetensors` + `selector.json`, `train_log.csv` (one row per optimiser step) and
   `eval_log.csv` (one row per epoch) into `out_dir`.

Everything random is seeded: weights and dropout by `config.seed` (inside `fork_rng`, so the
caller's RNG is untouched), the split and batch order by `config.data_seed`. Two runs with the same
config and data give identical weights and logs.

Resume (`resume.py`): the state after each epoch (weights, optimizer, frozen reference, β, RNG states, counters,
logs) is written atomically, its JSON last and naming the sha256 of its tensors, with the config
hash and a hash of the data. A later call with the same config and data continues from it and ends
with the same checkpoint bytes and logs as an uninterrupted run; a state of another config or other
data is refused with `CheckpointError`. The folder is deleted once the checkpoint is written.

Example::

    report = train_selector(SelectorConfig(version="v3", embedding_dim=384), data, run.dir / "selector")
    print(report.final["top1"], report.final["random_top1"])
"""

from __future__ import annotations

import contextlib
import csv
import io
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import Tensor

from vlmlab.errors import ConfigError, DataError
from vlmlab.icl.selectors import objectives as obj
from vlmlab.icl.selectors.base import SelectorModel
from vlmlab.icl.selectors.checkpoint import RESUME_DIR, clear_resume_state, read_resume_state, save_selector, write_resume_state
from vlmlab.icl.selectors.config import SelectorConfig
from vlmlab.icl.selectors.data import SelectorData
from vlmlab.icl.selectors.metrics import evaluate  # noqa: F401  (re-exported: held-out metrics after each epoch)
from vlmlab.icl.selectors.registry import build_selector
from vlmlab.icl.selectors.resume import TrainingState, check_identity, frozen_reference, new_optimizer, restore, run_identity
from vlmlab.progress import progress_bar
from vlmlab.runs import atomic_write_text

TRAIN_LOG = "train_log.csv"
EVAL_LOG = "eval_log.csv"


@dataclass
class TrainReport:
    """What training did: per-step losses, per-epoch held-out metrics, the final model's metrics.

    Attributes:
        config: the resolved config.
        checkpoint_dir: folder with `selector.safetensors`, `selector.json` and the CSV logs.
        steps: one dict per optimiser step (`phase`, `epoch`, `step`, `loss`, components).
        evals: one dict per epoch (`phase`, `epoch`, held-out metrics, `val_ce`).
        final: held-out metrics of the saved model (empty when there is no held-out split).
        train_anchors / val_anchors: split sizes.
        seconds: wall time (including the time before an interruption, when resumed).
        resumed_epochs: epochs loaded from a resume state instead of trained in this call (0 = fresh start).
        resume_write_seconds: time this call spent writing resume states (one per epoch).
    """

    config: SelectorConfig
    checkpoint_dir: Path
    steps: list[dict[str, Any]] = field(default_factory=list)
    evals: list[dict[str, Any]] = field(default_factory=list)
    final: dict[str, float] = field(default_factory=dict)
    train_anchors: int = 0
    val_anchors: int = 0
    seconds: float = 0.0
    resumed_epochs: int = 0
    resume_write_seconds: float = 0.0

    def to_markdown(self) -> str:
        """A short Markdown section for the stage's report.md."""
        lines = [
            f"### Selector {self.config.version}",
            "",
            f"{self.train_anchors} training anchors, {self.val_anchors} held-out, {len(self.steps)} steps, "
            f"{self.seconds:.1f} s. Checkpoint: `{self.checkpoint_dir}`.",
            "",
        ]
        if self.evals and self.final:
            keys = ["top1", "hit@5", "ndcg@10", "mrr", "set_recall", "random_top1"]
            lines += ["| phase | epoch | " + " | ".join(keys) + " |", "|---|---|" + "---|" * len(keys)]
            for row in self.evals:
                lines.append(f"| {row['phase']} | {row['epoch']} | " + " | ".join(f"{row[k]:.3f}" for k in keys) + " |")
        return "\n".join(lines) + "\n"


def train_selector(
    config: SelectorConfig,
    data: SelectorData,
    out_dir: Path | str,
    *,
    progress: bool = True,
    resume: bool = True,
    extra: dict[str, Any] | None = None,
) -> TrainReport:
    """Train the selector `config` describes on `data`; save it and its logs into `out_dir`.

    After every epoch of every phase a resume state is written to `out_dir/resume/` (weights,
    optimizer state, the frozen reference model, adaptive β, RNG states, counters, logs). When
    training is interrupted (a crash, SIGKILL), calling this again with the same config and data
    continues from the last finished epoch, and the checkpoint and logs come out identical to those
    of an uninterrupted run. The resume folder is removed once the checkpoint is saved.

    Args:
        config: a validated `SelectorConfig`.
        data: anchors with their own pools and beams (and rl candidates for v4).
        out_dir: folder for the checkpoint and CSV logs (created).
        progress: show a progress bar with ETA (only on a terminal).
        resume: continue from `out_dir/resume/` if it holds a state; False discards any state and
            starts over.
        extra: more JSON facts for `selector.json` (the train stage records how the beams were scored).

    Returns:
        A `TrainReport` with loss curves and held-out metrics.

    Raises:
        ConfigError / DataError: when the data does not fit the config (named key and fix).
        CheckpointError: `out_dir/resume/` holds a state of another config or other data, or an
            unreadable one (delete it or pass `resume=False` to start over).
    """
    check_compatible(config, data)
    if config.reverse_seq:
        data = reversed_sequences(data)
    out_dir = Path(out_dir)
    started = time.perf_counter()
    resume_dir = out_dir / RESUME_DIR
    identity = run_identity(config, data)
    saved = read_resume_state(resume_dir) if resume else None
    if saved is None:
        clear_resume_state(resume_dir)
    else:
        check_identity(resume_dir, saved[1], identity)
    train_rows, val_rows = split_anchors(len(data), config.val_fraction, config.data_seed)
    train, val = data.subset(train_rows), data.subset(val_rows)
    report = TrainReport(config, out_dir, train_anchors=len(train), val_anchors=len(val))
    state = TrainingState(build_selector(config), np.random.default_rng(config.data_seed), beta=config.kl_beta)
    model = state.model

    rl_rows = _rl_rows(train, config.require_positive_query) if config.uses_rl else []
    n_sup = _num_batches(len(train), config.batch_size)
    n_rl = _num_batches(len(rl_rows), config.batch_size)
    total = config.epochs * n_sup
    if config.uses_rl:
        total += config.rce_epochs * n_rl + config.grpo_epochs * n_rl * config.grpo_inner_steps

    bar = progress_bar() if progress else contextlib.nullcontext()
    with torch.random.fork_rng(devices=[]), bar as bars:
        torch.manual_seed(config.seed)
        earlier_seconds = restore(state, report, saved, resume_dir) if saved is not None else 0.0
        task = bars.add_task(f"train selector {config.version}", total=total, completed=len(report.steps)) if bars is not None else None

        def tick() -> None:
            if bars is not None:
                bars.advance(task)

        def end_epoch(phase: str, epoch: int) -> None:
            report.evals.append({"phase": phase, "epoch": epoch, **evaluate(model, val, config.shots)})
            _write_logs(out_dir, report)  # curves can be watched while training runs
            state.epochs_done[phase] = epoch + 1
            t0 = time.perf_counter()
            write_resume_state(resume_dir, state.tensors(), {**identity, **state.meta(report, earlier_seconds + t0 - started)})
            report.resume_write_seconds += time.perf_counter() - t0

        new_optimizer(state, "supervised", config.lr, config.weight_decay, saved)
        for epoch in range(state.epochs_done.get("supervised", 0), config.epochs):
            model.train()
            for rows in _batches(len(train), config.batch_size, state.rng):
                loss, parts = supervised_loss(model, config, train, rows)
                _step(model, state.optimizer, loss, config.grad_clip)
                report.steps.append({"phase": "supervised", "epoch": epoch, "step": len(report.steps), **parts})
                tick()
            end_epoch("supervised", epoch)

        if config.uses_rl and rl_rows:
            rl_data = train.subset(rl_rows)
            state.reference = frozen_reference(model, config, saved)  # the frozen supervised model
            new_optimizer(state, "rl", config.rl_lr or config.lr, config.weight_decay, saved)
            rce_total = config.rce_epochs * n_rl
            for epoch in range(state.epochs_done.get("rce", 0), config.rce_epochs):
                model.train()
                for rows in _batches(len(rl_data), config.batch_size, state.rng):
                    tau = obj.rce_temperature(state.rce_step, rce_total, config.rce_temperature_start, config.rce_temperature_end)
                    loss, parts = rce_step_loss(model, config, rl_data, rows, tau)
                    _step(model, state.optimizer, loss, config.grad_clip)
                    report.steps.append({"phase": "rce", "epoch": epoch, "step": len(report.steps), **parts})
                    state.rce_step += 1
                    tick()
                end_epoch("rce", epoch)

            for epoch in range(state.epochs_done.get("grpo", 0), config.grpo_epochs):
                model.eval()  # no dropout: ratios and KL compare deterministic policies
                for rows in _batches(len(rl_data), config.batch_size, state.rng):
                    top_k = config.grpo_top_k_early if epoch < config.grpo_early_epochs else config.grpo_top_k_late
                    for parts in grpo_updates(model, state.reference, state.optimizer, config, rl_data, rows, state.beta, top_k=top_k):
                        state.beta = parts["beta_next"]
                        report.steps.append({"phase": "grpo", "epoch": epoch, "step": len(report.steps), **parts})
                        tick()
                end_epoch("grpo", epoch)

    model.eval()
    report.final = evaluate(model, val, config.shots)
    report.seconds = earlier_seconds + time.perf_counter() - started
    extra = {"metrics": report.final, "train": {"anchors": len(train), "val_anchors": len(val), "steps": len(report.steps)},
             "order": data.order, **(extra or {})}
    save_selector(model, out_dir, data.fingerprint, extra=extra)
    _write_logs(out_dir, report)
    clear_resume_state(resume_dir)  # the checkpoint and logs are complete; nothing is left to resume
    return report


def reversed_sequences(data: SelectorData) -> SelectorData:
    """`data` with every beam and rl sequence in reverse selection order (`reverse_seq`)."""
    flip = lambda t: None if t is None else t.flip(-1)  # noqa: E731
    return replace(data, beam_positions=flip(data.beam_positions), rl_positions=flip(data.rl_positions))


def check_compatible(config: SelectorConfig, data: SelectorData) -> None:
    """Raise a one-line error when `data` cannot train `config`."""
    if data.embedding_dim != config.embedding_dim:
        raise ConfigError(
            f"embedding_dim is {config.embedding_dim} but the index embeddings have width {data.embedding_dim}; "
            f"set embedding_dim: {data.embedding_dim}"
        )
    if data.shots != config.shots:
        raise ConfigError(f"shots is {config.shots} but the beams have {data.shots} ICDs each; set shots: {data.shots}")
    if data.pool_size > config.pool_size:
        raise ConfigError(f"pools have up to {data.pool_size} candidates but pool_size is {config.pool_size}; raise pool_size")
    if config.stop_token and (data.beam_steps is None or bool(data.beam_steps[data.beam_mask].isnan().any())):
        raise DataError("stop_token learns where to stop from each beam's step_scores, but some beams have none (imported Lever-LM "
                        "beams keep only the last step's score); train it on beams searched by `vlmlab icl beam`")
    if config.uses_rl and (not data.has_rl or not _rl_rows(data, config.require_positive_query)):
        raise DataError("v4 trains on rl-data candidates but the data has none (with require_positive_query: none with a correct "
                        "candidate); build SelectorData with rl.jsonl")
    if config.uses_rl:
        try:  # a reward mode whose input some candidate lacks (hybrid without InfoScores) fails here, before training
            _rl_batch(config, data, torch.tensor(_rl_rows(data)))
        except ValueError as exc:
            raise DataError(f"rl.jsonl: {exc}") from None


def split_anchors(n: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded train/held-out split of anchor rows (at least one held-out anchor when val_fraction > 0)."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = 0 if val_fraction <= 0 or n < 2 else min(n - 1, max(1, round(n * val_fraction)))
    return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())


def _batch_inputs(data: SelectorData, rows: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    return data.query_emb[rows], data.pool_embeddings(rows), data.pool_mask[rows]


def _fill_padding(sequences: Tensor, mask: Tensor) -> Tensor:
    """Replace padded sequences by the group's first one, so every forward pass stays finite."""
    return torch.where(mask[..., None], sequences, sequences[:, :1])


def supervised_loss(model: SelectorModel, config: SelectorConfig, data: SelectorData, rows: Tensor) -> tuple[Tensor, dict[str, float]]:
    """CE on the best `ce_beams` beams (+ ranking loss over all beams for v3/v4)."""
    query, pool, pool_mask = _batch_inputs(data, rows)
    n_beams = data.beam_positions.shape[1]
    ce_beams = n_beams if config.ce_beams == "all" else min(int(config.ce_beams), n_beams)
    groups = n_beams if config.ranking_loss != "none" else ce_beams
    mask = data.beam_mask[rows, :groups]
    seqs = _fill_padding(data.beam_positions[rows, :groups], mask)
    if config.stop_token:  # targets end where the beam stops paying; the ranking loss ranks what they keep
        assert data.beam_steps is not None
        seqs, kept = obj.stop_targets(seqs, data.beam_steps[rows, :groups].nan_to_num(0.0), config.stop_min_gain, data.pool_size)
    logits = model.sequence_logits(query, pool, pool_mask, seqs)
    ce_mask = mask & (torch.arange(groups) < ce_beams)
    if config.ce_min_score is not None:  # Lever-LM `threshold`: low-scoring beams are no targets
        score = (data.beam_cumulative if config.beam_score == "cumulative" else data.beam_marginal)[rows, :groups]
        ce_mask = ce_mask & (score > config.ce_min_score)
    ce = obj.masked_mean(obj.cross_entropy(logits, seqs, config.label_smoothing), ce_mask)
    loss = config.ce_weight * ce
    parts = {"ce": float(ce.detach())}
    if config.ranking_loss != "none":
        scores = kept if config.stop_token else (data.beam_cumulative if config.beam_score == "cumulative" else data.beam_marginal)[rows]
        seq_logp = obj.sequence_log_prob(logits, seqs)
        if config.ranking_loss == "listwise":
            rank = obj.listwise_loss(seq_logp, scores, mask, config.listwise_temperature)
        else:
            rank = obj.pairwise_loss(seq_logp, scores, mask, config.pairwise_margin)
        loss = loss + config.ranking_weight * rank
        parts["ranking"] = float(rank.detach())
    parts["loss"] = float(loss.detach())
    return loss, parts


def _rl_batch(config: SelectorConfig, data: SelectorData, rows: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    assert data.rl_positions is not None and data.rl_mask is not None
    mask = data.rl_mask[rows]
    seqs = _fill_padding(data.rl_positions[rows], mask)
    reward = obj.rewards(
        data.rl_correct[rows],  # type: ignore[index]
        data.rl_acc[rows],  # type: ignore[index]
        data.rl_beam_score[rows].masked_fill(~mask, 0.0),  # type: ignore[index]
        config.reward_mode,
        config.hard_weight,
        config.soft_weight,
        config.infoscore_weight,
        gt_prob=None if data.rl_gt_prob is None else data.rl_gt_prob[rows].masked_fill(~mask, 0.0),
        rel=None if data.rl_rel is None else data.rl_rel[rows].masked_fill(~mask, 0.0),
        rel_weight=config.rel_weight,
    )
    return seqs, mask, reward.masked_fill(~mask, 0.0)


def rce_step_loss(
    model: SelectorModel, config: SelectorConfig, data: SelectorData, rows: Tensor, temperature: float
) -> tuple[Tensor, dict[str, float]]:
    """Reward-weighted CE over each anchor's rl candidates at RCE temperature `temperature`."""
    query, pool, pool_mask = _batch_inputs(data, rows)
    seqs, mask, reward = _rl_batch(config, data, rows)
    if config.rce_reward_normalization == "zscore_clamp":  # upstream: per-query z-score, clamped, no std floor
        reward = obj.group_advantages(reward, mask, clip=config.rce_reward_clamp, std_floor=0.0)
    logits = model.sequence_logits(query, pool, pool_mask, seqs)
    loss = obj.rce_loss(obj.cross_entropy(logits, seqs, config.label_smoothing), reward, mask, temperature)
    return loss, {"loss": float(loss.detach()), "rce": float(loss.detach()), "rce_temperature": temperature}


def grpo_updates(
    model: SelectorModel,
    reference: SelectorModel,
    optimizer: torch.optim.Optimizer,
    config: SelectorConfig,
    data: SelectorData,
    rows: Tensor,
    beta: float,
    top_k: int | None = None,
) -> Iterator[dict[str, float]]:
    """`grpo_inner_steps` PPO-clip updates on one batch of groups; yields each step's log row.

    `top_k`: only each group's k best candidates by reward take part (the curriculum); None = all.
    """
    query, pool, pool_mask = _batch_inputs(data, rows)
    seqs, mask, reward = _rl_batch(config, data, rows)
    mask = top_k_mask(reward, mask, top_k)
    advantages = obj.group_advantages(reward, mask, config.advantage_clip, config.advantage_std_floor, config.advantage_normalization)
    with torch.no_grad():
        ref_logits = reference.sequence_logits(query, pool, pool_mask, seqs)
        old_policy = reference if config.ppo_ratio_reference == "supervised" else model
        old_logits = ref_logits if old_policy is reference else model.sequence_logits(query, pool, pool_mask, seqs)
        old_logp = obj.sequence_log_prob(old_logits, seqs)
    for _ in range(config.grpo_inner_steps):
        logits = model.sequence_logits(query, pool, pool_mask, seqs)
        logp = obj.sequence_log_prob(logits, seqs)
        kl = obj.sequence_kl(logits, ref_logits)
        loss, stats = obj.grpo_loss(logp, old_logp, advantages, mask, config.clip_epsilon, kl, 0.0 if config.ppo_clip_only else beta)
        _step(model, optimizer, loss, config.grad_clip)
        next_beta = beta if config.ppo_clip_only else obj.adapt_kl_beta(
            beta, stats["kl"], config.kl_target_min, config.kl_target_max, config.kl_adapt_factor, config.kl_beta_min, config.kl_beta_max
        )
        yield {"loss": float(loss.detach()), **stats, "beta": beta, "beta_next": next_beta}
        beta = next_beta


def _rl_rows(data: SelectorData, require_positive: bool = False) -> list[int]:
    if data.rl_mask is None:
        return []
    keep = data.rl_mask.any(dim=1)
    if require_positive and data.rl_correct is not None:
        keep &= (data.rl_mask & (data.rl_correct > 0)).any(dim=1)
    return keep.nonzero().flatten().tolist()


def top_k_mask(reward: Tensor, mask: Tensor, k: int | None) -> Tensor:
    """`mask` restricted to each group's `k` highest-reward members (GRPO curriculum); all when k is None."""
    if k is None or k >= mask.shape[1]:
        return mask
    top = reward.masked_fill(~mask, float("-inf")).topk(k, dim=-1).indices
    return mask & torch.zeros_like(mask).scatter(1, top, True)


def _num_batches(n: int, batch_size: int) -> int:
    return (n + batch_size - 1) // batch_size


def _batches(n: int, batch_size: int, rng: np.random.Generator) -> Iterator[Tensor]:
    order = torch.from_numpy(rng.permutation(n))
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def _step(model: SelectorModel, optimizer: torch.optim.Optimizer, loss: Tensor, grad_clip: float) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()


def _write_logs(out_dir: Path, report: TrainReport) -> None:
    atomic_write_text(out_dir / TRAIN_LOG, _csv(report.steps))
    atomic_write_text(out_dir / EVAL_LOG, _csv(report.evals))


def _csv(rows: list[dict[str, Any]]) -> str:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()
