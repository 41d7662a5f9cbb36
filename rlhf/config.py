"""Round settings: per-stage hyper-parameter defaults (sized for a CPU), the ALLOW-LIST of what
a round may set per stage (each knob type- and range-checked), and the automatic deploy rule.

Validation needs no TRL import (the web process never loads torch): the allowed keys, their types
and ranges live here, and tests/rlhf/test_config.py checks each one is still a field of the
installed TRL config class of its stage. Everything not on the list is refused, with the reason:
paths, credentials, remote code, the Hub and output locations are the platform's."""
from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from pathlib import Path

from .algorithms import Algorithm
from .training import defaults as measured  # pure data: no torch import


def _round_settings(stage_defaults: dict, **changes) -> dict:
    """A stage script's measured defaults (rlhf/training/defaults.py) as a round's settings: LoRA
    as rankloop's own knobs (the launcher targets all linear layers, the same projections), and the
    platform's logging (every step, for the charts) and PPO sample generations (none) instead of
    the scripts'."""
    values = {k: v for k, v in stage_defaults.items()
              if k not in {"use_peft", "lora_target_modules", "logging_steps", "num_sample_generations"}}
    if "use_peft" in stage_defaults:
        values["lora"] = stage_defaults["use_peft"]
    return {**values, **changes}


# A round's defaults, sized for the default model on a CPU: the values (and the measurements behind
# each) are rlhf/training/defaults.py's, which bench/rm_accuracy.py and bench/loop_gain.py run with.
DEFAULTS = {
    "seed": 0,
    "reward": _round_settings(measured.REWARD, use_margin=False),
    "ppo": _round_settings(measured.PPO, max_prompt_length=256),
    "grpo": _round_settings(measured.GRPO),
    # RLOO is GRPO's sampling loop with another advantage; not measured on its own, so GRPO's values
    # with RLOO's own KL default.
    "rloo": _round_settings(measured.GRPO, beta=0.05),
    "dpo": _round_settings(measured.DPO),
    "sft": {"enabled": False, "num_train_epochs": 1, "per_device_train_batch_size": 2, "learning_rate": 1e-5,
            "max_length": 512},
    # Issue 10: enough held-out prompts to detect a change (all of them up to the cap), several
    # samples each; every held-out pair for the reward model's accuracy (up to max_pairs).
    "eval": {"prompts": measured.EVALUATE["max_prompts"], "samples_per_prompt": measured.EVALUATE["samples_per_prompt"],
             "max_new_tokens": measured.EVALUATE["max_new_tokens"], "max_pairs": 2000,
             "temperature": measured.EVALUATE["temperature"]},
}
# What every TRL config gets on top (the CPU-safe settings the project's guide asks for).
COMMON_TRAINER_ARGS = {
    "report_to": "none", "logging_steps": 1, "save_strategy": "steps", "save_steps": 25, "save_total_limit": 1,
    "activation_checkpointing": False, "dataloader_pin_memory": False, "disable_tqdm": True,
    "dataloader_num_workers": 0,
}
# rankloop's own knobs that are ModelConfig fields of the stage scripts under another name.
LORA_MODEL_CONFIG = {"lora": "use_peft", "lora_r": "lora_r", "lora_alpha": "lora_alpha", "lora_dropout": "lora_dropout"}

# deploy rule key -> the figure it bounds: a flat metric, or (the *_ci_low keys) the lower end of a
# figure's 95% interval in the evaluation, e.g. min_reward_gain_ci_low: 0 deploys only a policy whose
# reward gain the interval separates from zero.
DEPLOY_RULE_KEYS = {"min_win_rate": "win_rate", "min_rm_accuracy": "rm_accuracy_heldout", "max_kl": "kl_to_old",
                    "min_reward_gain": "reward_gain",
                    "min_reward_gain_ci_low": "evaluation.reward_diff.low",
                    "min_win_rate_ci_low": "evaluation.win_rate.low",
                    "min_rm_accuracy_ci_low": "evaluation.rm_accuracy.low",
                    "min_judge_reward_gain_ci_low": "evaluation.judge.reward_diff.low",
                    "min_judge_win_rate_ci_low": "evaluation.judge.win_rate.low"}
SECTIONS = ("reward", "policy", "sft", "eval")


def _error(message):
    from .services import RoundError

    return RoundError(message)


# --- the allow-list -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Knob:
    """One setting a round may change: its JSON type, range or choices. `trl`: a field of the
    stage's TRL config (False: rankloop's own, turned into the script's arguments by rlhf/launcher.py)."""

    kind: str  # "int", "float", "bool", "choice"
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # low itself is refused (a learning rate of 0)
    choices: tuple = ()
    many: bool = False  # a list of choices (DPO's loss_type)
    nullable: bool = False
    minus_one: bool = False  # -1 also allowed: "not set" (max_steps: train by epochs)
    trl: bool = True

    def check(self, name: str, value):
        """The value, or a RoundError naming the setting and what it must be."""
        if value is None and self.nullable:
            return value
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise _error(f"{name} must be true or false.")
            return value
        if self.kind == "choice":
            values = value if self.many and isinstance(value, list) else [value]
            if not values or any(not isinstance(v, str) or v not in self.choices for v in values):
                raise _error(f"{name} must be {'one or a list' if self.many else 'one'} of {', '.join(self.choices)}.")
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                isinstance(value, float) and not math.isfinite(value)):
            raise _error(f"{name} must be a {'whole number' if self.kind == 'int' else 'number'}.")
        if self.kind == "int" and not isinstance(value, int):
            raise _error(f"{name} must be a whole number.")
        if self.minus_one and value == -1:
            return value
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            low = f"greater than {self.low:g}" if self.low_open else f"at least {self.low:g}"
            raise _error(f"{name} must be {low}{' (or -1)' if self.minus_one else ''}.")
        if self.high is not None and value > self.high:
            raise _error(f"{name} must be at most {self.high:g}.")
        return value


def _int(low=1, high=1_000_000, **kw):
    return Knob("int", low, high, **kw)


def _num(low=0.0, high=None, **kw):
    return Knob("float", low, high, **kw)


def _rate(**kw):
    return Knob("float", 0.0, 1.0, **kw)


BOOL = Knob("bool")
CHOICE = functools.partial(Knob, "choice")
LENGTH = _int(1, 131_072)

# The Trainer's own knobs, common to every TRL stage.
TRAINING = {
    "learning_rate": _num(0.0, 1.0, low_open=True),
    "num_train_epochs": _num(0.0, 1000, low_open=True),
    "max_steps": _int(1, 10_000_000, minus_one=True),
    "per_device_train_batch_size": _int(1, 4096),
    "per_device_eval_batch_size": _int(1, 4096),
    "gradient_accumulation_steps": _int(1, 4096),
    "warmup_steps": _num(0.0),  # below 1: a share of the steps
    "lr_scheduler_type": CHOICE(choices=("linear", "cosine", "cosine_with_restarts", "polynomial", "constant",
                                         "constant_with_warmup", "inverse_sqrt")),
    "weight_decay": _rate(),
    "max_grad_norm": _num(0.0),
    "adam_beta1": _num(0.0, 1.0), "adam_beta2": _num(0.0, 1.0),
    "adam_epsilon": _num(0.0, 1.0, low_open=True),
    "seed": _int(0, 2**32 - 1),
    "save_strategy": CHOICE(choices=("no", "steps", "epoch")),
    "save_steps": _num(0.0, low_open=True),  # below 1: a share of the steps
    "logging_steps": _num(0.0, low_open=True),
}
LORA = {"lora": Knob("bool", trl=False), "lora_r": _int(1, 1024, trl=False),
        "lora_alpha": _int(1, 4096, trl=False), "lora_dropout": _num(0.0, 0.99, trl=False)}
MAX_PROMPTS = {"max_prompts": _int(1, 1_000_000, trl=False, nullable=True)}
SAMPLING = {
    "num_generations": _int(2, 256), "max_completion_length": LENGTH,
    "generation_batch_size": _int(nullable=True), "steps_per_generation": _int(nullable=True),
    "temperature": _num(0.0, 10.0, low_open=True), "top_p": _num(0.0, 1.0, low_open=True), "top_k": _int(0),
    "min_p": _rate(nullable=True), "repetition_penalty": _num(0.0, 10.0, low_open=True),
    "beta": _num(0.0), "num_iterations": _int(1, 100), "epsilon": _num(0.0, 1.0, low_open=True),
    "epsilon_high": _num(0.0, 1.0, low_open=True, nullable=True), "mask_truncated_completions": BOOL,
    "disable_dropout": BOOL,
}
ALLOWED = {
    "reward": {**TRAINING, "max_length": LENGTH, "center_rewards_coefficient": _num(0.0, nullable=True),
               "disable_dropout": BOOL, **LORA, "use_margin": Knob("bool", trl=False)},
    "ppo": {**TRAINING, "num_mini_batches": _int(1, 4096), "total_episodes": _int(nullable=True),
            "local_rollout_forward_batch_size": _int(1, 4096), "response_length": LENGTH,
            "stop_token": CHOICE(choices=("eos",), nullable=True), "temperature": _num(0.0, 10.0, low_open=True),
            "missing_eos_penalty": _num(0.0, nullable=True), "num_ppo_epochs": _int(1, 100),
            "whiten_rewards": BOOL, "kl_coef": _num(0.0), "kl_estimator": CHOICE(choices=("k1", "k3")),
            "cliprange": _num(0.0, 10.0, low_open=True), "vf_coef": _num(0.0),
            "cliprange_value": _num(0.0, 10.0, low_open=True), "gamma": _rate(), "lam": _rate(),
            **LORA, **MAX_PROMPTS, "max_prompt_length": _int(1, 131_072, trl=False)},
    "grpo": {**TRAINING, **SAMPLING, "scale_rewards": CHOICE(choices=("group", "batch", "none")),
             "loss_type": CHOICE(choices=("grpo", "bnpo", "dr_grpo", "dapo", "cispo", "sapo")),
             **LORA, **MAX_PROMPTS},
    "rloo": {**TRAINING, **SAMPLING, "normalize_advantages": BOOL, **LORA, **MAX_PROMPTS},
    "dpo": {**TRAINING, "max_length": LENGTH, "truncation_mode": CHOICE(choices=("keep_start", "keep_end")),
            "beta": _num(0.0), "label_smoothing": _num(0.0, 0.5), "use_weighting": BOOL, "disable_dropout": BOOL,
            "loss_type": CHOICE(many=True, choices=(
                "sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard", "aot",
                "aot_unpaired", "apo_zero", "apo_down", "discopop", "sft", "sigmoid_norm")),
            **LORA},
    "sft": {**TRAINING, "enabled": Knob("bool", trl=False), "max_length": LENGTH, "packing": BOOL,
            "truncation_mode": CHOICE(choices=("keep_start", "keep_end")),
            "completion_only_loss": Knob("bool", nullable=True), "assistant_only_loss": BOOL},
    "eval": {"prompts": _int(1, 10_000, trl=False), "samples_per_prompt": _int(1, 64, trl=False),
             "max_new_tokens": _int(1, 4096, trl=False), "max_pairs": _int(1, 1_000_000, trl=False),
             "temperature": _num(0.0, 10.0, low_open=True, trl=False)},
}
SEED = TRAINING["seed"]


def refusal_reason(name: str) -> str:
    """Why a key off the list is refused: what kind of platform-controlled setting it is."""
    lowered = name.lower()
    if "token" in lowered and lowered not in {"pad_token", "eos_token", "stop_token", "stop_token_id"}:
        return ("it is a credential; the platform holds credentials and a round never sees or sets them. "
                "Remove it (its value is not shown here)")
    if lowered in {"trust_remote_code", "model_init_kwargs"} or lowered.endswith("_kwargs"):
        return ("it passes options to model, dataset or generation loading, which can run remote code; "
                "the platform loads models itself")
    if "hub" in lowered:
        return ("it talks to the Hugging Face Hub; rounds never publish or download, the platform's registry "
                "keeps models")
    if (lowered.endswith(("_dir", "_path", "_config", "_file")) or lowered in {"deepspeed", "fsdp",
                                                                              "resume_from_checkpoint"}):
        return ("it names a file or folder on the server; where a round reads and writes (checkpoints, "
                "outputs, configs) is set by the platform")
    if lowered in {"report_to", "run_name", "logging_strategy", "save_total_limit"} or lowered.startswith(
            ("vllm_server", "ddp_", "local_rank", "use_vllm")):
        return "where a round reports, logs and which servers or processes it uses are set by the platform"
    return ""


def validate_hyperparameters(algorithm: str, hyperparameters) -> dict:
    """{"seed", "reward": {...}, "policy": {...}, "sft": {...}, "eval": {...}} — each key must be on
    its stage's allow-list and each value pass its check, so nothing bad is queued."""
    if not isinstance(hyperparameters, dict):
        raise _error("Hyper-parameters must be a JSON object like {\"policy\": {\"learning_rate\": 1e-6}}.")
    unknown = set(hyperparameters) - {"seed", *SECTIONS, "generation"}
    if unknown:
        raise _error(f"Unknown hyper-parameter section(s) {', '.join(sorted(unknown))}; "
                     "use seed, reward, policy, sft, eval.")
    clean = {}
    if "seed" in hyperparameters:
        if not isinstance(hyperparameters["seed"], int) or isinstance(hyperparameters["seed"], bool):
            raise _error("seed must be a whole number.")
        clean["seed"] = SEED.check("seed", hyperparameters["seed"])
    for section in SECTIONS:
        values = hyperparameters.get(section) or {}
        if not isinstance(values, dict):
            raise _error(f"Hyper-parameters '{section}' must be an object of name: value.")
        stage = algorithm if section == "policy" else section
        allowed = ALLOWED[stage]
        for name in sorted(set(values) - set(allowed)):
            reason = refusal_reason(name)
            if reason:
                raise _error(f"{section}.{name} cannot be set by a round: {reason}.")
        bad = sorted(set(values) - set(allowed))
        if bad:
            raise _error(f"Unknown {section} hyper-parameter(s) for {algorithm}: {', '.join(bad)} (not a training "
                         f"setting a round may change). {section} may set: {', '.join(sorted(allowed))}.")
        for name, value in values.items():
            allowed[name].check(f"{section}.{name}", value)
        if values:
            clean[section] = dict(values)
    return clean


def stage_settings(round, stage: str) -> dict:
    """Defaults for a stage, overlaid with the round's own settings."""
    section = "policy" if stage in Algorithm.values else stage
    return {**DEFAULTS.get(stage, {}), **round.hyperparameters.get(section, {})}


def stage_config(round, kind: str) -> dict:
    """The settings a run records at launch (what it will train with)."""
    return {"seed": round.hyperparameters.get("seed", DEFAULTS["seed"]), **stage_settings(round, kind)}


@functools.cache
def config_class(stage: str):
    """The TRL config class of a stage (None for the evaluation). Imports TRL: workers only."""
    import os

    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # PPO lives there on purpose (pinned TRL 1.12)
    import trl
    from trl.experimental.ppo import PPOConfig

    return {"reward": trl.RewardConfig, "ppo": PPOConfig, "grpo": trl.GRPOConfig, "rloo": trl.RLOOConfig,
            "dpo": trl.DPOConfig, "sft": trl.SFTConfig}.get(stage)


def trainer_kwargs(stage: str, settings: dict, *, output_dir: str, seed: int, gpu: bool = False,
                   bf16: bool | None = None) -> dict:
    """The fields of a stage's TRL config: common CPU-safe ones, then the stage's settings that
    are on its allow-list (a run planned before the list keeps its config, and whatever else it
    holds never reaches TRL). `bf16`: train in bfloat16 mixed precision (default: on a GPU)."""
    allowed = {name for name, knob in ALLOWED.get(stage, {}).items() if knob.trl}
    args = {**COMMON_TRAINER_ARGS, "seed": seed, "output_dir": output_dir, "bf16": gpu if bf16 is None else bf16}
    args.update({k: v for k, v in settings.items() if k in allowed})
    if stage == "ppo":
        args["save_strategy"] = "no"  # PPOTrainer cannot resume; its checkpoints would only cost time
        args["num_sample_generations"] = 0
    return args


def model_config(settings: dict) -> dict:
    """The ModelConfig fields of a stage (LoRA through TRL's get_peft_config)."""
    if not settings.get("lora"):
        return {}
    values = {LORA_MODEL_CONFIG[k]: v for k, v in settings.items() if k in LORA_MODEL_CONFIG}
    return {**values, "use_peft": True, "lora_target_modules": ["all-linear"]}


def trainer_args(stage: str, settings: dict, *, output_dir: str, seed: int):
    """The stage's TRL config object (imports TRL: for checks only; the scripts build their own)."""
    return config_class(stage)(**trainer_kwargs(stage, settings, output_dir=output_dir, seed=seed))


# --- launcher settings (accelerate launch) ---------------------------------------------------------

LAUNCHER_KEYS = ("num_processes", "num_machines", "machine_rank", "main_process_ip", "main_process_port",
                 "mixed_precision", "config_file", "use_vllm")
LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){LABEL}(?:\.{LABEL})*$")  # a host name or an IPv4 address


def _is_ip(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def launcher_config_dir():
    """settings.RANKLOOP_LAUNCHER_CONFIG_DIR as a resolved folder, or None when unset."""
    from django.conf import settings

    folder = getattr(settings, "RANKLOOP_LAUNCHER_CONFIG_DIR", "") or ""
    return Path(folder).expanduser().resolve() if folder else None


def resolve_config_file(name) -> Path:
    """A DeepSpeed/FSDP accelerate config file by its name inside RANKLOOP_LAUNCHER_CONFIG_DIR;
    anything that would reach outside it (an absolute path, .., a link out) is refused."""
    folder = launcher_config_dir()
    if not isinstance(name, str) or not name.strip():
        raise _error("launcher.config_file must be the name of a file in the launcher config directory.")
    if folder is None:
        raise _error("launcher.config_file cannot be used: no launcher config directory is configured "
                     "(RANKLOOP_LAUNCHER_CONFIG_DIR).")
    if "\x00" in name or Path(name).is_absolute() or ".." in Path(name).parts:
        raise _error("launcher.config_file must be a file name inside the launcher config directory "
                     "(no absolute path, no ..).")
    path = (folder / name).resolve()
    if not path.is_relative_to(folder):
        raise _error("launcher.config_file must stay inside the launcher config directory.")
    if not path.is_file():
        choices = sorted(p.name for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
        raise _error(f"launcher.config_file {name!r} is not a file of the launcher config directory"
                     + (f"; there are: {', '.join(choices)}." if choices else " (it has no files)."))
    return path


def validate_launcher(values, *, where: str = "launcher") -> dict:
    """accelerate's settings a project or a round may set (each checked; everything else is
    refused): num_processes (per machine; null: all GPUs, or one process on a CPU), num_machines,
    machine_rank, main_process_ip and main_process_port (multi-node), mixed_precision
    (no/fp16/bf16; null: bf16 on a GPU, no on a CPU), config_file (a DeepSpeed or FSDP accelerate
    config in RANKLOOP_LAUNCHER_CONFIG_DIR) and use_vllm (GRPO/RLOO rollouts with vLLM on a GPU)."""
    if not isinstance(values, dict):
        raise _error(f"{where} must be an object, e.g. {{\"num_processes\": 2}}.")
    bad = sorted(set(values) - set(LAUNCHER_KEYS))
    if bad:
        raise _error(f"Unknown {where} setting(s) {', '.join(bad)}; use {', '.join(LAUNCHER_KEYS)}.")
    checks = {"num_processes": _int(1, 1024, nullable=True), "num_machines": _int(1, 1024),
              "machine_rank": _int(0, 1023), "main_process_port": _int(1024, 65535, nullable=True),
              "mixed_precision": CHOICE(choices=("no", "fp16", "bf16"), nullable=True), "use_vllm": BOOL}
    clean = {}
    for name, value in values.items():
        if name in checks:
            clean[name] = checks[name].check(f"{where}.{name}", value)
        elif name == "main_process_ip":
            if value is not None and (not isinstance(value, str) or not (HOSTNAME.fullmatch(value) or _is_ip(value))):
                raise _error(f"{where}.main_process_ip must be an IP address or a host name.")
            clean[name] = value
        elif name == "config_file":
            if value is not None:
                resolve_config_file(value)
            clean[name] = value
    return clean


def check_project_launcher(values) -> dict:
    """A project's own launch settings, as a round would merge them (labeling stores them)."""
    values = validate_launcher(values)
    launcher_settings(values, {})
    return values


def launcher_settings(project_values: dict, round_values: dict) -> dict:
    """The settings a round launches with: the project's, then the round's, checked together."""
    merged = validate_launcher({**(project_values or {}), **(round_values or {})})
    machines, rank = merged.get("num_machines", 1), merged.get("machine_rank", 0)
    if rank >= machines:
        raise _error(f"launcher.machine_rank must be below num_machines ({machines}).")
    if machines > 1 and not merged.get("main_process_ip"):
        raise _error("launcher.main_process_ip is needed when num_machines is above 1: the address of machine 0.")
    return merged


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
    """(holds, why). An empty rule never deploys on its own, and a rule on a figure that was not
    measured (no held-out pairs, say) does not hold."""
    if not rule:
        return False, ""
    from .evaluation import figure_value

    reasons = []
    for key, threshold in rule.items():
        path = DEPLOY_RULE_KEYS[key]
        name = path if "." not in path else key.removeprefix("min_").removeprefix("max_")
        value = figure_value(metrics, path)
        if value is None:
            return False, f"{name} was not measured"
        ok = value <= threshold if key.startswith("max_") else value >= threshold
        if not ok:
            return False, f"{name} {value:.3f} misses {key} {threshold}"
        reasons.append(f"{name} {value:.3f} meets {key} {threshold}")
    return True, "; ".join(reasons)
