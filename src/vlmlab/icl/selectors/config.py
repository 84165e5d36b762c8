"""`SelectorConfig`: every knob of the ICD selectors v0–v4 and their training, validated up front.

One config describes one selector: its architecture (which version, sizes) and how it is trained
(supervised cross-entropy on the best beams, an optional ranking loss over all beams, and for v4 an
RCE warm-up followed by GRPO on `rl.jsonl` candidates). Defaults that depend on the version
(`num_layers`, `ranking_loss`) are resolved here, so the saved config is always the full truth.

Example::

    cfg = SelectorConfig(version="v2", embedding_dim=384, num_layers=2, shots=2)
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from vlmlab.config import StrictModel


Version = Literal["v0", "v1", "v2", "v3", "v4"]
RankingLoss = Literal["none", "listwise", "pairwise"]
BeamScore = Literal["cumulative", "marginal"]

# Fields that only the v4 RL phases read; giving one a non-default value for another version is a
# mistake we report (a resolved dump with the defaults reloads fine).
RL_FIELDS = (
    "rce_epochs",
    "rce_temperature_start",
    "rce_temperature_end",
    "grpo_epochs",
    "grpo_inner_steps",
    "clip_epsilon",
    "advantage_clip",
    "kl_beta",
    "kl_target_min",
    "kl_target_max",
    "kl_adapt_factor",
    "kl_beta_min",
    "kl_beta_max",
    "reward_mode",
    "advantage_std_floor",
    "advantage_normalization",
    "ppo_ratio_reference",
    "ppo_clip_only",
    "grpo_top_k_early",
    "grpo_top_k_late",
    "grpo_early_epochs",
    "rce_reward_normalization",
    "rce_reward_clamp",
    "require_positive_query",
    "hard_weight",
    "soft_weight",
    "infoscore_weight",
    "rel_weight",
    "rl_lr",
)

# Fields that change the network's parameters; a checkpoint must match them exactly.
ARCHITECTURE_FIELDS = (
    "version",
    "embedding_dim",
    "hidden_dim",
    "num_layers",
    "num_heads",
    "pool_size",
    "diversity",
    "candidate_self_attention",
    "scoring",
    "stop_token",
)
POINTER_OPTIONS = ("diversity", "candidate_self_attention", "scoring", "stop_token")


class SelectorConfig(StrictModel):
    """A selector version, its sizes, and its training recipe.

    Attributes:
        version: `v0` GPT-2 over pool positions (Lever-LM); `v1` bi-encoder pointer network;
            `v2` + cross-attention; `v3` + ranking loss; `v4` + RCE warm-up then GRPO.
        embedding_dim: width D of the query and pool embeddings given to the selector.
        hidden_dim: width of the selector's internal representations.
        num_layers: v0: GPT-2 layers (default 2); v1: must be 0; v2–v4: cross-attention layers
            (default 1).
        num_heads: attention heads (GPT-2 or cross-attention); must divide `hidden_dim`.
        pool_size: the largest candidate pool K a query may have (v0's position vocabulary).
        shots: ICDs chosen per query (with `stop_token`: at most); every training beam must have exactly this many.
        ranking_loss: `listwise` (KL to softmax(beam score / τ)) or `pairwise` (hinge on sequence
            log-probabilities); v3/v4 default `listwise`, v0–v2 must be `none`.
        beam_score: which beam score orders beams for the ranking loss.
        ce_beams: how many of the best beams per anchor are cross-entropy targets; `all` = every beam
            (upstream Lever-LM / Lever-Plus).
        ce_min_score: only beams whose score (`beam_score`) is above this are CE targets (Lever-LM
            `threshold`); None = no threshold.
        reverse_seq: learn each sequence in reverse selection order (Lever-LM `reverse_seq`); the
            eval stage reverses the picks back. Recorded in the checkpoint.
        reward_mode: one of `objectives.REWARD_MODES` (upstream names + vlmlab's `hybrid`).
        advantage_std_floor: GRPO z-scores rewards by max(std, floor) (upstream 0.1); 0 = no floor.
        advantage_normalization: `zscore` (upstream default) or `rank` (upstream `use_rank`).
        ppo_clip_only: GRPO without the KL term (upstream `use_ppo_clip_only`).
        grpo_top_k_early / grpo_top_k_late / grpo_early_epochs: GRPO curriculum (upstream): during the
            first `grpo_early_epochs` epochs only each group's top-k candidates by reward take part,
            then the top `grpo_top_k_late`; None = all.
        rce_reward_normalization: RCE weights softmax(reward / τ) on `raw` rewards, or on per-query
            z-scores clamped to ±`rce_reward_clamp` (upstream's default `z_score_clamp`, 3.0).
        require_positive_query: RL phases use only queries with a correct candidate (upstream flag).
        diversity: pointer variant `mmr` (upstream v4-3): each step's scores minus a learnable
            per-step λ times the candidate's largest cosine similarity to the items already chosen.
            `dpp` (upstream v4-7): plus softplus(λ) · log(1 − s²), s the largest cosine similarity to
            the chosen items in a learned rank-32 projection (a log-det gain approximation).
        candidate_self_attention: pointer variant (upstream v4-4): pool items attend to each other
            (one transformer encoder layer) before the query sees them.
        scoring: pointer scoring head: `cosine` (scaled cosine, default), `additive` (Bahdanau,
            v^T tanh(W_q q + W_c c)) or `bilinear` (q^T W c) (upstream v4-5).
        stop_token: pointer variant (upstream v4-10): a learned STOP item beside the pool, so the
            selector chooses how many ICDs a query gets (0..`shots`; after STOP every step is STOP).
            Supervised targets end where the beam stops paying: see `stop_min_gain`. The RL phases
            train on full-length candidates (as upstream's v4-10 RL); the selector's own beams and
            samples (rl-data) are drawn without STOP.
        stop_min_gain: with `stop_token`, each beam's target keeps its first L picks, L maximising the
            InfoScore gained minus `stop_min_gain` per pick (Σ step_scores[:L] − L·stop_min_gain; ties go to
            the shorter), then STOP. 0 = stop when no further pick raises P(answer).
        ppo_ratio_reference: the PPO ratio π/π_old against the policy that collected the batch
            (`collection`, vlmlab) or against the frozen supervised model (`supervised`, upstream's
            `old_log_probs` from the SFT model).
    """

    version: Version
    embedding_dim: int = Field(gt=0)
    hidden_dim: int = Field(256, gt=0)
    num_layers: int | None = Field(None, ge=0)
    num_heads: int = Field(1, gt=0)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    pool_size: int = Field(64, gt=0)
    shots: int = Field(2, gt=0)

    # pointer variants (v1-v4)
    diversity: Literal["none", "mmr", "dpp"] = "none"
    candidate_self_attention: bool = False
    scoring: Literal["cosine", "additive", "bilinear"] = "cosine"
    stop_token: bool = False
    stop_min_gain: float = 0.0

    # supervised objective
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    ce_beams: int | Literal["all"] = 1
    ce_min_score: float | None = None
    reverse_seq: bool = False
    ce_weight: float = Field(1.0, ge=0.0)
    ranking_loss: RankingLoss | None = None
    ranking_weight: float = Field(1.0, ge=0.0)
    listwise_temperature: float = Field(1.0, gt=0.0)
    pairwise_margin: float = Field(1.0, ge=0.0)
    beam_score: BeamScore = "cumulative"

    # v4: RCE warm-up then GRPO on rl.jsonl candidates
    rce_epochs: int = Field(2, ge=0)
    rce_temperature_start: float = Field(2.0, gt=0.0)
    rce_temperature_end: float = Field(0.5, gt=0.0)
    grpo_epochs: int = Field(2, ge=0)
    grpo_inner_steps: int = Field(2, gt=0)
    clip_epsilon: float = Field(0.2, gt=0.0, lt=1.0)
    advantage_clip: float = Field(5.0, gt=0.0)
    kl_beta: float = Field(0.1, ge=0.0)
    kl_target_min: float = Field(0.01, ge=0.0)
    kl_target_max: float = Field(0.1, gt=0.0)
    kl_adapt_factor: float = Field(1.5, ge=1.0)
    kl_beta_min: float = Field(1e-3, ge=0.0)
    kl_beta_max: float = Field(10.0, gt=0.0)
    reward_mode: str = "hard_plus_soft"
    advantage_std_floor: float = Field(0.1, ge=0.0)
    advantage_normalization: Literal["zscore", "rank"] = "zscore"
    ppo_ratio_reference: Literal["collection", "supervised"] = "collection"
    ppo_clip_only: bool = False
    grpo_top_k_early: int | None = Field(None, ge=1)
    grpo_top_k_late: int | None = Field(None, ge=1)
    grpo_early_epochs: int = Field(1, ge=0)
    rce_reward_normalization: Literal["raw", "zscore_clamp"] = "raw"
    rce_reward_clamp: float = Field(3.0, gt=0.0)
    require_positive_query: bool = False
    hard_weight: float = 1.0
    soft_weight: float = 1.0
    infoscore_weight: float = 1.0
    rel_weight: float = 0.1  # `hard_plus_gtprob_plus_rel`: weight of the relevance of wrong answers (upstream 0.1)
    rl_lr: float | None = Field(None, gt=0.0)

    # optimisation
    lr: float = Field(1e-3, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0)
    grad_clip: float = Field(1.0, gt=0.0)
    epochs: int = Field(10, ge=0)
    batch_size: int = Field(32, gt=0)
    val_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    seed: int = 0
    data_seed: int = 0

    @field_validator("reward_mode")
    @classmethod
    def _reward_mode(cls, v: str) -> str:
        from vlmlab.icl.selectors.objectives import check_reward_mode

        return check_reward_mode(v)

    @field_validator("ce_beams")
    @classmethod
    def _ce_beams(cls, v: int | str) -> int | str:
        if isinstance(v, int) and v < 1:
            raise ValueError("ce_beams must be >= 1 or 'all'")
        return v

    @model_validator(mode="before")
    @classmethod
    def _resolve_version_defaults(cls, data: Any) -> Any:
        """Fill `num_layers` and `ranking_loss` from the version before validation."""
        if isinstance(data, dict) and isinstance(data.get("version"), str):
            data = dict(data)
            v = data["version"]
            if data.get("num_layers") is None:
                data["num_layers"] = {"v0": 2, "v1": 0}.get(v, 1)
            if data.get("ranking_loss") is None:
                data["ranking_loss"] = "listwise" if v in ("v3", "v4") else "none"
        return data

    @model_validator(mode="after")
    def _check(self) -> "SelectorConfig":
        v = self.version
        assert self.num_layers is not None and self.ranking_loss is not None
        if v == "v0" and self.num_layers < 1:
            raise ValueError("num_layers must be >= 1 for v0 (GPT-2 layers)")
        if v == "v1" and self.num_layers != 0:
            raise ValueError(
                "num_layers must be 0 for v1 (no cross-attention); use version v2 for cross-attention layers"
            )
        if v in ("v2", "v3", "v4") and self.num_layers < 1:
            raise ValueError(f"num_layers must be >= 1 for {v} (cross-attention layers); use v1 for none")
        if v == "v0":
            fields = type(self).model_fields
            variant = [name for name in POINTER_OPTIONS if getattr(self, name) != fields[name].default]
            if variant:
                raise ValueError(f"{', '.join(variant)} are pointer-network options (v1-v4); v0 is the GPT-2 selector")
        if not self.stop_token and self.stop_min_gain != type(self).model_fields["stop_min_gain"].default:
            raise ValueError("stop_min_gain only applies with stop_token: true")
        if self.stop_token and self.reverse_seq:
            raise ValueError("stop_token and reverse_seq cannot be combined: a reversed target would start with STOP")
        if self.hidden_dim % self.num_heads:
            raise ValueError(f"hidden_dim {self.hidden_dim} must be divisible by num_heads {self.num_heads}")
        if v in ("v0", "v1", "v2") and self.ranking_loss != "none":
            raise ValueError(f"ranking_loss is a v3/v4 feature; got {self.ranking_loss!r} for {v}")
        if v == "v3" and self.ranking_loss == "none":
            raise ValueError("v3 needs ranking_loss listwise or pairwise (use v2 for CE only)")
        if v != "v4":
            fields = type(self).model_fields
            stray = sorted(
                name
                for name in set(RL_FIELDS) & self.model_fields_set
                if getattr(self, name) != fields[name].default
            )
            if stray:
                raise ValueError(f"{', '.join(stray)} only apply to v4 (RCE + GRPO); remove them for {v}")
        if self.kl_target_min > self.kl_target_max:
            raise ValueError("kl_target_min must be <= kl_target_max")
        if self.shots > self.pool_size:
            raise ValueError(f"shots {self.shots} > pool_size {self.pool_size}")
        return self

    @property
    def uses_rl(self) -> bool:
        """True when training has the RCE and GRPO phases (v4)."""
        return self.version == "v4"

    def architecture(self) -> dict[str, object]:
        """The fields that decide parameter names and shapes (compared when loading)."""
        return {name: getattr(self, name) for name in ARCHITECTURE_FIELDS}
