"""Objectives checked by hand: advantages, PPO clipping, the KL term, β adaptation, rewards, losses."""

from __future__ import annotations

import math

import pytest
import torch

from vlmlab.icl.selectors import objectives as obj

NEG = float("-inf")


def test_group_advantages_are_z_scores_within_each_group():
    rewards = torch.tensor([[1.0, 2.0, 3.0, 4.0], [5.0, 5.0, 5.0, 0.0], [0.0, 10.0, 7.0, 7.0]])
    mask = torch.tensor([[True, True, True, True], [True, True, True, False], [True, True, False, False]])
    adv = obj.group_advantages(rewards, mask, clip=5.0)
    std = math.sqrt(5 / 3)  # sample (n - 1) std of 1..4, as upstream's torch.std
    assert adv[0].tolist() == pytest.approx([-1.5 / std, -0.5 / std, 0.5 / std, 1.5 / std])
    assert adv[1].tolist() == [0.0, 0.0, 0.0, 0.0]  # equal rewards: no preference; masked member 0
    assert adv[2].tolist() == pytest.approx([-5 / math.sqrt(50), 5 / math.sqrt(50), 0.0, 0.0])
    # groups are independent: scaling one group's rewards leaves the others alone
    scaled = rewards.clone()
    scaled[0] *= 100
    assert torch.allclose(obj.group_advantages(scaled, mask), adv)
    assert obj.group_advantages(torch.tensor([[0.0, 0.0, 0.0, 100.0]]), torch.ones(1, 4, dtype=torch.bool), clip=1.0).max() == 1.0


def test_std_floor_keeps_reward_noise_small_as_upstream():
    """The issue's example: rewards [3e-5, 1e-5, 0, 0]; upstream floors the std at 0.1 (a 1e-6 floor made them ±1.6)."""
    noise = torch.tensor([[3e-5, 1e-5, 0.0, 0.0]])
    every = torch.ones(1, 4, dtype=torch.bool)
    adv = obj.group_advantages(noise, every)
    assert adv[0].tolist() == pytest.approx([2e-4, 0.0, -1e-4, -1e-4], abs=1e-9)
    # upstream's own arithmetic, reproduced with torch: (r - mean) / clamp(std, min=0.1)
    assert torch.allclose(adv, (noise - noise.mean()) / noise.std().clamp(min=0.1))
    # the floor is an option: 0 turns it off and the noise becomes unit-variance signal
    assert obj.group_advantages(noise, every, std_floor=0.0)[0, 0] > 1.0
    assert obj.group_advantages(torch.tensor([[0.0, 1.0]]), torch.ones(1, 2, dtype=torch.bool), std_floor=5.0)[0].tolist() == pytest.approx([-0.1, 0.1])


def test_rank_normalisation_spreads_the_group_from_1_to_minus_1():
    adv = obj.group_advantages(torch.tensor([[0.2, 3.0, 1.0, 9.0]]), torch.tensor([[True, True, True, False]]), normalization="rank")
    assert adv[0].tolist() == pytest.approx([-1.0, 1.0, 0.0, 0.0])  # best +1, worst -1, masked 0


def _grad_of_surrogate(ratio: float, advantage: float, eps: float = 0.2) -> tuple[float, float, float]:
    logp = torch.tensor([[math.log(ratio)]], requires_grad=True)
    loss, stats = obj.grpo_loss(
        logp, torch.zeros(1, 1), torch.tensor([[advantage]]), torch.ones(1, 1, dtype=torch.bool), eps, torch.zeros(1, 1), 0.0
    )
    loss.backward()
    return float(loss.detach()), float(logp.grad), stats["clip_fraction"]


def test_ppo_clip_stops_the_gradient_outside_the_trust_region():
    # ratio inside [1-ε, 1+ε]: gradient −A·ρ
    loss, grad, clipped = _grad_of_surrogate(1.1, 2.0)
    assert loss == pytest.approx(-2.2) and grad == pytest.approx(-2.2) and clipped == 0.0
    # positive advantage, ratio above 1+ε: clipped, no push further up
    loss, grad, clipped = _grad_of_surrogate(1.5, 2.0)
    assert loss == pytest.approx(-2.4) and grad == 0.0 and clipped == 1.0
    # negative advantage, ratio below 1-ε: clipped, no push further down
    loss, grad, _ = _grad_of_surrogate(0.5, -1.0)
    assert loss == pytest.approx(0.8) and grad == 0.0
    # negative advantage, ratio above 1+ε: min() keeps the unclipped (pessimistic) term, gradient flows
    loss, grad, _ = _grad_of_surrogate(1.5, -1.0)
    assert loss == pytest.approx(1.5) and grad == pytest.approx(1.5)


def test_kl_term_is_exact_and_weighted_by_beta():
    logits = torch.tensor([[[[0.0, 1.0, NEG], [2.0, NEG, 0.0]]]])  # [1,1,S=2,K=3]
    ref = torch.tensor([[[[1.0, 0.0, NEG], [0.0, NEG, 0.0]]]])
    kl = obj.sequence_kl(logits, ref)
    expected = 0.0
    for t in range(2):
        p = torch.softmax(logits[0, 0, t], -1)
        q = torch.softmax(ref[0, 0, t], -1)
        keep = p > 0
        expected += float((p[keep] * (p[keep].log() - q[keep].log())).sum())
    assert float(kl) == pytest.approx(expected)
    assert float(obj.sequence_kl(logits, logits)) == pytest.approx(0.0, abs=1e-7)
    mask = torch.ones(1, 1, dtype=torch.bool)
    zeros = torch.zeros(1, 1)
    loss0, _ = obj.grpo_loss(zeros, zeros, zeros, mask, 0.2, kl.view(1, 1), 0.0)
    loss2, stats = obj.grpo_loss(zeros, zeros, zeros, mask, 0.2, kl.view(1, 1), 2.0)
    assert float(loss2 - loss0) == pytest.approx(2 * expected) and stats["kl"] == pytest.approx(expected)


def test_adaptive_beta_moves_towards_the_kl_target():
    assert obj.adapt_kl_beta(0.1, kl=0.5, target_min=0.01, target_max=0.1, factor=2.0) == pytest.approx(0.2)
    assert obj.adapt_kl_beta(0.1, kl=0.001, target_min=0.01, target_max=0.1, factor=2.0) == pytest.approx(0.05)
    assert obj.adapt_kl_beta(0.1, kl=0.05, target_min=0.01, target_max=0.1, factor=2.0) == pytest.approx(0.1)
    assert obj.adapt_kl_beta(8.0, kl=1.0, target_min=0.01, target_max=0.1, factor=2.0, beta_max=10.0) == 10.0


def test_reward_modes():
    correct = torch.tensor([1.0, 0.0, 0.0])
    acc = torch.tensor([0.6, 0.9, 0.0])
    beam = torch.tensor([0.5, float("nan"), -0.2])
    assert obj.rewards(correct, acc, beam, "hard_plus_soft").tolist() == pytest.approx([1.6, 0.9, 0.0])
    sep = obj.rewards(correct, acc, beam, "separated")
    assert sep.tolist() == pytest.approx([2.6, 0.9, 0.0]) and sep[0] - sep[1:].max() >= 1.0
    full = torch.tensor([0.5, 0.3, -0.2])
    assert obj.rewards(correct, acc, full, "hybrid", infoscore_weight=2.0).tolist() == pytest.approx([2.6, 1.5, -0.4])
    # upstream's other modes (Lever-Plus compute_reward_for_candidate, worked by hand)
    gt = torch.tensor([0.7, 0.2, 0.1])
    assert obj.rewards(correct, acc, full, "hard_plus_soft_v2").tolist() == pytest.approx([2.6, 0.9, 0.0])
    assert obj.rewards(correct, acc, full, "hard_only").tolist() == pytest.approx([1.0, 0.0, 0.0])
    assert obj.rewards(correct, acc, full, "soft_only").tolist() == pytest.approx([0.6, 0.9, 0.0])
    assert obj.rewards(correct, acc, full, "hard01_plus_gtprob", gt_prob=gt).tolist() == pytest.approx([1.7, 0.2, 0.1])
    assert obj.rewards(correct, acc, full, "hard01_plus_gtprob_separated", gt_prob=gt).tolist() == pytest.approx([2.7, 0.2, 0.1])
    # legacy: alpha · InfoScore + beta · correctness (alpha = infoscore_weight, beta = hard_weight)
    assert obj.rewards(correct, acc, full, "legacy", hard_weight=2.0, infoscore_weight=0.5).tolist() == pytest.approx([2.25, 0.15, -0.1])
    rel = torch.tensor([0.9, 0.5, 0.2])  # relevance only shapes wrong answers
    assert obj.rewards(correct, acc, full, "hard_plus_gtprob_plus_rel", gt_prob=gt, rel=rel, rel_weight=0.1).tolist() == pytest.approx(
        [1.7, 0.25, 0.12])
    assert obj.rewards(correct * 9, acc, full, "hard_only").max() == 5.0  # upstream clips rewards to [-5, 5]


def test_hybrid_never_imputes_a_missing_infoscore():
    """A sampled candidate without an InfoScore used to get 0, above searched beams with a negative one."""
    with pytest.raises(ValueError, match="hybrid.*beam_score"):
        obj.rewards(torch.tensor([1.0, 0.0]), torch.tensor([1.0, 0.0]), torch.tensor([-0.3, float("nan")]), "hybrid")
    with pytest.raises(ValueError, match="vqa_gt_prob"):
        obj.rewards(torch.tensor([1.0]), torch.tensor([1.0]), torch.tensor([0.0]), "hard01_plus_gtprob")


def test_unknown_reward_mode_says_which_was_meant():
    with pytest.raises(ValueError, match=r"unknown reward_mode 'hard_plus_sotf' \(did you mean 'hard_plus_soft'\?\)"):
        obj.rewards(torch.zeros(1), torch.zeros(1), torch.zeros(1), "hard_plus_sotf")


def test_cross_entropy_smoothing_ignores_masked_positions():
    logits = torch.tensor([[[0.0, 0.0, NEG, NEG]]])  # one step, two allowed positions
    ce = obj.cross_entropy(logits, torch.tensor([[0]]), label_smoothing=0.2)
    assert float(ce) == pytest.approx(math.log(2))  # uniform over the allowed: smoothing changes nothing
    assert torch.isfinite(ce).all()


def test_listwise_and_pairwise_losses():
    scores = torch.tensor([[3.0, 1.0, 0.0]])
    mask = torch.tensor([[True, True, False]])
    target_logp = torch.log_softmax(torch.tensor([3.0, 1.0]), -1)
    matched = torch.tensor([[float(target_logp[0]), float(target_logp[1]), -50.0]])
    assert float(obj.listwise_loss(matched, scores, mask)) == pytest.approx(0.0, abs=1e-6)
    assert float(obj.listwise_loss(matched.flip(-1), scores, torch.ones(1, 3, dtype=torch.bool))) > 0.1
    lp = torch.tensor([[-1.0, -1.5, -9.0]])
    # one valid pair (0 better than 1): max(0, 1 − 0.5)
    assert float(obj.pairwise_loss(lp, scores, mask, margin=1.0)) == pytest.approx(0.5)


def test_rce_weights_follow_softmax_of_rewards_and_temperature():
    ce = torch.tensor([[1.0, 3.0]])
    reward = torch.tensor([[1.0, 0.0]])
    mask = torch.ones(1, 2, dtype=torch.bool)
    w = torch.softmax(torch.tensor([1.0, 0.0]) / 0.5, -1)
    assert float(obj.rce_loss(ce, reward, mask, 0.5)) == pytest.approx(float(w[0] * 1 + w[1] * 3))
    assert obj.rce_temperature(0, 10, 2.0, 0.5) == 2.0
    assert obj.rce_temperature(9, 10, 2.0, 0.5) == 0.5
    assert obj.rce_temperature(3, 7, 2.0, 0.5) == pytest.approx(1.25)


def test_grpo_updates_raise_the_better_candidate_and_stay_near_the_reference(make_config, data):
    import copy

    from vlmlab.icl.selectors import build_selector
    from vlmlab.icl.selectors.train import _rl_batch, grpo_updates

    cfg = make_config("v4", grpo_inner_steps=4, lr=1e-2)
    model = build_selector(cfg).eval()
    reference = copy.deepcopy(model).requires_grad_(False)
    rows = torch.arange(8)
    seqs, mask, reward = _rl_batch(cfg, data, rows)
    adv = obj.group_advantages(reward, mask)

    def advantage_weighted_logp() -> float:
        with torch.no_grad():
            q, p, m = data.query_emb[rows], data.pool_embeddings(rows), data.pool_mask[rows]
            lp = obj.sequence_log_prob(model.sequence_logits(q, p, m, seqs), seqs)
        return float((adv * lp).sum())

    before = advantage_weighted_logp()
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr)
    logs = list(grpo_updates(model, reference, optimizer, cfg, data, rows, beta=0.1))
    assert advantage_weighted_logp() > before
    assert logs[0]["ratio_mean"] == pytest.approx(1.0) and logs[0]["kl"] == pytest.approx(0.0, abs=1e-6)
    assert logs[-1]["kl"] > 0.0 and len(logs) == 4


def test_ppo_ratio_against_the_supervised_model_as_upstream(make_config, data):
    """`ppo_ratio_reference: supervised` (upstream's old_log_probs from the SFT model): once the policy
    has moved away from the reference, the first ratio of a new batch is not 1; `collection` is."""
    import copy

    from vlmlab.icl.selectors import build_selector
    from vlmlab.icl.selectors.train import grpo_updates

    rows = torch.arange(8)
    ratios = {}
    for ref in ("collection", "supervised"):
        cfg = make_config("v4", grpo_inner_steps=1, lr=1e-2, ppo_ratio_reference=ref)
        model = build_selector(cfg).eval()
        reference = copy.deepcopy(model).requires_grad_(False)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.05 * torch.randn_like(p))
        optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr)
        ratios[ref] = next(grpo_updates(model, reference, optimizer, cfg, data, rows, beta=0.1))["ratio_mean"]
    assert ratios["collection"] == pytest.approx(1.0)
    assert abs(ratios["supervised"] - 1.0) > 1e-3


def test_ce_on_all_beams_averages_every_beam(make_config, data):
    """`ce_beams: all` (upstream: every beam is a target) = mean CE over all beams; 1 = best beam only."""
    from vlmlab.icl.selectors import build_selector
    from vlmlab.icl.selectors.train import supervised_loss

    rows = torch.arange(6)
    model = build_selector(make_config("v2")).eval()
    seqs, mask = data.beam_positions[rows], data.beam_mask[rows]
    with torch.no_grad():
        per_beam = obj.cross_entropy(model.sequence_logits(data.query_emb[rows], data.pool_embeddings(rows), data.pool_mask[rows],
                                                           torch.where(mask[..., None], seqs, seqs[:, :1])), seqs)
        loss_all, _ = supervised_loss(model, make_config("v2", ce_beams="all"), data, rows)
        loss_best, _ = supervised_loss(model, make_config("v2", ce_beams=1), data, rows)
    assert mask.sum() > len(rows)  # several beams per anchor, so the two differ
    assert float(loss_all) == pytest.approx(float(per_beam[mask].mean()), rel=1e-5)
    assert float(loss_best) == pytest.approx(float(per_beam[:, 0].mean()), rel=1e-5)


def test_grpo_options_top_k_curriculum_ppo_clip_only_and_positive_queries(make_config, data):
    import copy

    from vlmlab.icl.selectors import build_selector
    from vlmlab.icl.selectors.train import _rl_rows, grpo_updates, rce_step_loss, top_k_mask

    reward = torch.tensor([[0.1, 0.9, 0.5, 0.7], [1.0, 0.0, 2.0, 0.0]])
    mask = torch.tensor([[True, True, True, False], [True, True, True, True]])
    assert top_k_mask(reward, mask, 2).tolist() == [[False, True, True, False], [True, False, True, False]]
    assert torch.equal(top_k_mask(reward, mask, None), mask)
    # PPO-clip only: no KL term in the loss, β never adapts
    rows = torch.arange(8)
    cfg = make_config("v4", grpo_inner_steps=3, lr=1e-2, ppo_clip_only=True)
    model = build_selector(cfg).eval()
    reference = copy.deepcopy(model).requires_grad_(False)
    logs = list(grpo_updates(model, reference, torch.optim.SGD(model.parameters(), lr=1e-2), cfg, data, rows, beta=0.7, top_k=2))
    assert [row["beta"] for row in logs] == [0.7, 0.7, 0.7] and logs[-1]["kl"] > 0
    assert all(row["loss"] == pytest.approx(row["policy_loss"]) for row in logs)
    # require_positive_query keeps only queries with a correct candidate
    with_pos = (data.rl_mask & (data.rl_correct > 0)).any(dim=1)
    assert _rl_rows(data, True) == with_pos.nonzero().flatten().tolist() and len(_rl_rows(data, True)) <= len(_rl_rows(data))
    # RCE on clamped per-query z-scores: invariant to scaling the rewards (x2 stays inside the ±5 reward clip)
    torch.set_grad_enabled(False)
    raw = rce_step_loss(model, make_config("v4", rce_reward_normalization="zscore_clamp"), data, rows, 1.0)[0]
    scaled = copy.deepcopy(data)
    scaled.rl_acc = data.rl_acc * 2.0
    scaled.rl_correct = data.rl_correct * 2.0
    again = rce_step_loss(model, make_config("v4", rce_reward_normalization="zscore_clamp", hard_weight=1.0), scaled, rows, 1.0)[0]
    assert float(again) == pytest.approx(float(raw), rel=1e-5)
    plain = rce_step_loss(model, make_config("v4"), scaled, rows, 1.0)[0]
    torch.set_grad_enabled(True)
    assert float(plain) != pytest.approx(float(raw), rel=1e-3)


def test_ce_threshold_and_reverse_seq(make_config, data):
    """`ce_min_score` (Lever-LM threshold): beams scoring at or below it are no CE targets;
    `reverse_seq`: the model learns each sequence reversed."""
    from vlmlab.icl.selectors import build_selector
    from vlmlab.icl.selectors.train import reversed_sequences, supervised_loss

    rows = torch.arange(6)
    model = build_selector(make_config("v2")).eval()
    seqs, mask = data.beam_positions[rows], data.beam_mask[rows]
    score = data.beam_cumulative[rows]
    cut = float(score[mask].median())
    with torch.no_grad():
        per_beam = obj.cross_entropy(model.sequence_logits(data.query_emb[rows], data.pool_embeddings(rows), data.pool_mask[rows],
                                                           torch.where(mask[..., None], seqs, seqs[:, :1])), seqs)
        loss, _ = supervised_loss(model, make_config("v2", ce_beams="all", ce_min_score=cut), data, rows)
    keep = mask & (score > cut)
    assert 0 < keep.sum() < mask.sum()
    assert float(loss) == pytest.approx(float(per_beam[keep].mean()), rel=1e-5)
    flipped = reversed_sequences(data)
    assert torch.equal(flipped.beam_positions, data.beam_positions.flip(-1)) and torch.equal(flipped.rl_positions, data.rl_positions.flip(-1))
