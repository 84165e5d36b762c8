"""`preset:` in the ICL stage configs: one word for a set of defaults, e.g. upstream Lever-Plus semantics.

A preset only fills keys the config leaves out; a key written in the config always wins, and the
resolved `config.yaml` of a run holds every value, so a run never depends on a preset table changing.

`lever-plus` gives what upstream Lever-Plus (yunsoft2019/Lever-Plus) does where vlmlab's default
differs (`docs/icl.md`, "Semantics that differ", lists them all, with the option behind each):

- prompts: a system turn with upstream's instructions, questions as "Question:<Q> Short answer:";
- beam: answer + end-of-turn scored (`score_eos`), new demonstrations on the left, ranked by the
  marginal InfoScore;
- rl-data and eval: a candidate is correct when its VQA accuracy is > 0, the OpenFlamingo VQA metric,
  generations cut as upstream's `vqa_postprocess` before scoring;
- train: every beam is a CE target (`ce_beams: all`), 3 cross-attention layers, the PPO ratio taken
  against the frozen supervised model, z-scored advantages with std floored at 0.1, the GRPO top-k
  curriculum (3 then 5), RCE on per-query z-scored rewards clamped to ±3; and
  `upstream_version:` takes upstream's version names (its v3 is RCE + GRPO, vlmlab's v4).

Example::

    preset: lever-plus      # in any stage config
    upstream_version: v3    # train only: vlmlab v4 (RCE warm-up then GRPO); also v4, v4-2, v4-3, v4-4, v4-5, v4-7, v4-10
"""

from __future__ import annotations

from typing import Any

from vlmlab.registry import Registry

PRESETS = Registry.of_names("preset", ("vlmlab", "lever-plus"), error=ValueError,
                            unknown=lambda name, hint, names: f"unknown preset {name!r}; choose one of {', '.join(names)}")

STAGE_DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    "lever-plus": {
        "beam": {"prompt_format": "lever-plus", "score_eos": True, "order": "left", "rank_by": "marginal"},
        "rl-data": {"prompt_format": "lever-plus", "correct_threshold": 0.0, "correct_comparison": ">", "vqa_mode": "openflamingo",
                    "answer_postprocess": "lever-plus"},
        "eval": {"prompt_format": "lever-plus", "vqa_mode": "openflamingo", "answer_postprocess": "lever-plus"},
        "train": {},
    },
}

# selector fields under `preset: lever-plus` (num_layers only where the version has cross-attention)
LEVER_PLUS_SELECTOR = {"ce_beams": "all", "ppo_ratio_reference": "supervised", "advantage_std_floor": 0.1,
                       "advantage_normalization": "zscore", "grpo_top_k_early": 3, "grpo_top_k_late": 5, "grpo_early_epochs": 1,
                       "rce_reward_normalization": "zscore_clamp", "rce_reward_clamp": 3.0}
LEVER_PLUS_CROSS_LAYERS = 3

# upstream Lever-Plus version name -> vlmlab selector fields. Upstream's v4 and v4-N are its v3 recipe (RCE
# warm-up, then GRPO) on RL data v4; v4-N name the pointer network (v4-2's GRU decoder is vlmlab's pointer).
_RL = {"version": "v4", "ranking_loss": "none"}
_UPSTREAM_SELECTORS: dict[str, dict[str, Any]] = {
    "v0": {"version": "v0"},  # GPT-2 over pool positions (Lever-LM)
    "v1": {"version": "v1"},  # bi-encoder pointer network
    "v2": {"version": "v2"},  # + cross-attention
    "v3": _RL,  # supervised (v2) then RCE warm-up then GRPO
    "v4": _RL,  # v3 trained on RL data v4 (strict VQA evaluation, vqa_gt_prob, relevance: what rl-data writes)
    "v4-2": _RL,  # + GRU pointer decoder (vlmlab's pointer always updates its query state with a GRU)
    "v4-3": {**_RL, "diversity": "mmr"},  # + learnable MMR diversity penalty
    "v4-4": {**_RL, "candidate_self_attention": True, "diversity": "mmr"},  # + candidate self-attention (upstream's keeps v4-3's MMR)
    "v4-5": {**_RL, "scoring": "additive"},  # additive scoring head (upstream's default attention_type; bilinear: scoring: bilinear)
    "v4-7": {**_RL, "diversity": "dpp"},  # DPP-style log-det set gain
    "v4-10": {**_RL, "stop_token": True},  # STOP token: adaptive number of shots
}
UPSTREAM_VERSIONS: Registry[dict[str, Any]] = Registry(
    "upstream_version", _UPSTREAM_SELECTORS, error=ValueError,
    unknown=lambda name, hint, names: (f"upstream_version {name!r} is not an upstream Lever-Plus version; "
                                       f"{hint + ' ' if hint else ''}choose one of {', '.join(names)}"),
)
# upstream versions vlmlab does not have, and why (the error says it)
NOT_IMPLEMENTED = {
    "v4-1": "its query update is a learned scalar gate; vlmlab's pointer updates with a GRU, upstream's v4-2 (use upstream_version: v4-2)",
    "v4-6": "coverage / topic prototypes are not implemented",
    "v4-8": "the slot / set decoder is not implemented",
    "v4-9": "two-stage coarse-to-fine re-ranking is not implemented",
}


def check_preset(name: str) -> str:
    return PRESETS.check(name)


def apply_stage_preset(data: Any, stage: str) -> Any:
    """`data` (a raw config mapping) with the preset's defaults for `stage` filled where absent."""
    if not isinstance(data, dict) or not isinstance(data.get("preset"), str):
        return data
    defaults = STAGE_DEFAULTS.get(check_preset(data["preset"]), {}).get(stage, {})
    return {**defaults, **data}


def resolve_selector(selector: dict[str, Any], preset: str, upstream_version: str | None) -> dict[str, Any]:
    """The selector fields after `upstream_version` and the preset's selector defaults.

    Raises:
        ValueError: an unknown upstream version, or one that contradicts `selector.version`.
    """
    out = dict(selector)
    if upstream_version is not None:
        if upstream_version in NOT_IMPLEMENTED:
            raise ValueError(f"upstream_version {upstream_version!r} is not available: {NOT_IMPLEMENTED[upstream_version]}")
        mapped = UPSTREAM_VERSIONS.get(upstream_version)
        given = out.get("version")
        if given is not None and given != mapped["version"]:
            raise ValueError(f"upstream_version {upstream_version} is vlmlab version {mapped['version']}, but selector.version is {given}")
        out = {**mapped, **out}
    if preset == "lever-plus":
        out = {**LEVER_PLUS_SELECTOR, **out}
        if out.get("version") in ("v2", "v3", "v4") and out.get("num_layers") is None:
            out["num_layers"] = LEVER_PLUS_CROSS_LAYERS
        if out.get("version") != "v4":  # RL-only fields would be reported as stray for v0-v3
            from vlmlab.icl.selectors.config import RL_FIELDS

            out = {k: v for k, v in out.items() if k not in RL_FIELDS or k in selector}
    return out
