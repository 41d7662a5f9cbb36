"""Round settings: per-stage hyper-parameter defaults (sized for a CPU), their validation, and
the automatic deploy rule. Every TRL config field of a stage can be set per round."""
from __future__ import annotations

import dataclasses
import functools

# Our own knobs beside the TRL config fields.
EXTRA_KEYS = {
    "reward": {"lora", "lora_r", "lora_alpha", "lora_dropout", "use_margin"},
    "policy": {"lora", "lora_r", "lora_alpha", "lora_dropout", "max_prompt_length", "max_prompts"},
    "sft": {"enabled"},
    "eval": {"prompts", "max_new_tokens", "max_pairs"},
}
# Set by the platform; a round cannot change where things are written or logged.
RESERVED = {"output_dir", "report_to", "logging_dir", "push_to_hub", "hub_model_id", "resume_from_checkpoint",
            "sft_model_path", "reward_model_path", "save_total_limit"}

DEFAULTS = {
    "seed": 0,
    "reward": {"num_train_epochs": 1, "per_device_train_batch_size": 4, "learning_rate": 1e-5,
               "max_length": 512, "lora": False, "lora_r": 8, "lora_alpha": 16, "lora_dropout": 0.0,
               "use_margin": False},
    "ppo": {"num_train_epochs": 1, "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1,
            "num_mini_batches": 1, "num_ppo_epochs": 1, "local_rollout_forward_batch_size": 2,
            "response_length": 32, "learning_rate": 3e-6, "kl_coef": 0.05, "missing_eos_penalty": 1.0,
            "stop_token": "eos", "max_prompt_length": 256},
    "grpo": {"num_train_epochs": 1, "per_device_train_batch_size": 2, "num_generations": 2,
             "max_completion_length": 32, "learning_rate": 1e-6, "beta": 0.04},
    "rloo": {"num_train_epochs": 1, "per_device_train_batch_size": 2, "num_generations": 2,
             "max_completion_length": 32, "learning_rate": 1e-6, "beta": 0.05},
    "dpo": {"num_train_epochs": 1, "per_device_train_batch_size": 2, "learning_rate": 5e-7, "beta": 0.1,
            "max_length": 512},
    "sft": {"enabled": False, "num_train_epochs": 1, "per_device_train_batch_size": 2, "learning_rate": 1e-5,
            "max_length": 512},
    "eval": {"prompts": 16, "max_new_tokens": 32, "max_pairs": 256},
}
# What every TRL config gets on top (the CPU-safe settings the project's guide asks for).
COMMON_TRAINER_ARGS = {
    "report_to": "none", "logging_steps": 1, "save_strategy": "steps", "save_steps": 25, "save_total_limit": 1,
    "activation_checkpointing": False, "dataloader_pin_memory": False, "disable_tqdm": True,
    "dataloader_num_workers": 0,
}
DEPLOY_RULE_KEYS = {"min_win_rate": "win_rate", "min_rm_accuracy": "rm_accuracy_heldout", "max_kl": "kl_to_old",
                    "min_reward_gain": "reward_gain"}


def _error(message):
    from .services import RoundError

    return RoundError(message)


@functools.cache
def config_class(stage: str):
    import os

    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # PPO lives there on purpose (pinned TRL 1.12)
    import trl
    from trl.experimental.ppo import PPOConfig

    return {"reward": trl.RewardConfig, "ppo": PPOConfig, "grpo": trl.GRPOConfig, "rloo": trl.RLOOConfig,
            "dpo": trl.DPOConfig, "sft": trl.SFTConfig}.get(stage)


@functools.cache
def config_fields(stage: str) -> frozenset:
    cls = config_class(stage)
    return frozenset(f.name for f in dataclasses.fields(cls)) if cls else frozenset()


def validate_hyperparameters(algorithm: str, hyperparameters) -> dict:
    """{"seed", "reward": {...}, "policy": {...}, "sft": {...}, "eval": {...}} — each stage's keys
    checked against its TRL config, so a typo is refused before anything is queued."""
    if not isinstance(hyperparameters, dict):
        raise _error("Hyper-parameters must be a JSON object like {\"policy\": {\"learning_rate\": 1e-6}}.")
    unknown = set(hyperparameters) - {"seed", "reward", "policy", "sft", "eval", "generation"}
    if unknown:
        raise _error(f"Unknown hyper-parameter section(s) {', '.join(sorted(unknown))}; "
                     "use seed, reward, policy, sft, eval.")
    clean = {}
    if "seed" in hyperparameters:
        if not isinstance(hyperparameters["seed"], int) or isinstance(hyperparameters["seed"], bool):
            raise _error("seed must be a whole number.")
        clean["seed"] = hyperparameters["seed"]
    for section in ("reward", "policy", "sft", "eval"):
        values = hyperparameters.get(section) or {}
        if not isinstance(values, dict):
            raise _error(f"Hyper-parameters '{section}' must be an object of name: value.")
        stage = algorithm if section == "policy" else section
        allowed = (config_fields(stage) | EXTRA_KEYS[section]) - RESERVED
        bad = sorted(set(values) - allowed)
        if bad:
            raise _error(f"Unknown {section} hyper-parameter(s) for {algorithm}: {', '.join(bad)}.")
        for name, value in values.items():
            if not isinstance(value, (int, float, str, bool, list, dict, type(None))):
                raise _error(f"{section}.{name} must be a JSON value.")
            if name in {"max_steps", "per_device_train_batch_size", "num_generations", "prompts"} and (
                    not isinstance(value, int) or value < (-1 if name == "max_steps" else 1)):
                raise _error(f"{section}.{name} must be a positive whole number.")
            if name == "learning_rate" and (not isinstance(value, (int, float)) or value <= 0):
                raise _error(f"{section}.learning_rate must be a positive number.")
        if values:
            clean[section] = dict(values)
    return clean


def stage_settings(round, stage: str) -> dict:
    """Defaults for a stage, overlaid with the round's own settings."""
    section = "policy" if stage in {"ppo", "grpo", "rloo", "dpo"} else stage
    return {**DEFAULTS.get(stage, {}), **round.hyperparameters.get(section, {})}


def stage_config(round, kind: str) -> dict:
    """The settings a run records at launch (what it will train with)."""
    return {"seed": round.hyperparameters.get("seed", DEFAULTS["seed"]), **stage_settings(round, kind)}


def trainer_kwargs(stage: str, settings: dict, *, output_dir: str, seed: int) -> dict:
    """The keyword arguments of a stage's TRL config: common CPU-safe ones, then the stage's settings."""
    import torch

    fields = config_fields(stage)
    args = {**COMMON_TRAINER_ARGS, "seed": seed, "output_dir": output_dir,
            "bf16": bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())}
    args.update({k: v for k, v in settings.items() if k in fields})
    if stage == "ppo":
        args["save_strategy"] = "no"  # PPOTrainer cannot resume; its checkpoints would only cost time
        args["num_sample_generations"] = 0
    return {k: v for k, v in args.items() if k in fields}


def trainer_args(stage: str, settings: dict, *, output_dir: str, seed: int):
    return config_class(stage)(**trainer_kwargs(stage, settings, output_dir=output_dir, seed=seed))


def validate_deploy_rule(rule) -> dict:
    """{} (deploy by hand) or thresholds: min_win_rate, min_rm_accuracy, max_kl, min_reward_gain."""
    if not isinstance(rule, dict):
        raise _error("The deploy rule must be an object, e.g. {\"min_win_rate\": 0.55}.")
    bad = sorted(set(rule) - set(DEPLOY_RULE_KEYS))
    if bad:
        raise _error(f"Unknown deploy rule key(s) {', '.join(bad)}; use {', '.join(DEPLOY_RULE_KEYS)}.")
    for key, value in rule.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise _error(f"Deploy rule {key} must be a number.")
    return dict(rule)


def deploy_rule_holds(rule: dict, metrics: dict) -> tuple[bool, str]:
    """(holds, why). An empty rule never deploys on its own."""
    if not rule:
        return False, ""
    reasons = []
    for key, threshold in rule.items():
        value = metrics.get(DEPLOY_RULE_KEYS[key])
        if value is None:
            return False, f"{DEPLOY_RULE_KEYS[key]} was not measured"
        ok = value <= threshold if key.startswith("max_") else value >= threshold
        if not ok:
            return False, f"{DEPLOY_RULE_KEYS[key]} {value:.3f} misses {key} {threshold}"
        reasons.append(f"{DEPLOY_RULE_KEYS[key]} {value:.3f} meets {key} {threshold}")
    return True, "; ".join(reasons)
