"""What a round may set: an allow-list of training knobs per stage, each type- and range-checked;
paths, credentials, remote code, the Hub and output locations stay with the platform."""
import dataclasses

import pytest

from rlhf import config, services
from rlhf.models import Round
from rlhf.training import defaults


def refused(algorithm, hyperparameters):
    with pytest.raises(services.RoundError) as caught:
        config.validate_hyperparameters(algorithm, hyperparameters)
    return str(caught.value)


def test_it_refuses_a_deepspeed_path():
    message = refused("dpo", {"policy": {"deepspeed": "/etc/passwd"}})
    assert "policy.deepspeed" in message and "platform" in message and "file" in message


def test_it_refuses_remote_code_through_model_init_kwargs():
    message = refused("ppo", {"reward": {"model_init_kwargs": {"trust_remote_code": True}}})
    assert "reward.model_init_kwargs" in message and "code" in message


def test_it_refuses_trust_remote_code_itself():
    message = refused("grpo", {"policy": {"trust_remote_code": True}})
    assert "policy.trust_remote_code" in message and "code" in message


def test_it_refuses_a_hub_token():
    message = refused("dpo", {"sft": {"hub_token": "hf_secret"}})
    assert "sft.hub_token" in message and "credential" in message
    assert "hf_secret" not in message  # a refused secret is not echoed back


@pytest.mark.parametrize("name, value", [
    ("push_to_hub", True), ("hub_model_id", "me/model"), ("output_dir", "/tmp/x"), ("logging_dir", "/tmp/y"),
    ("report_to", "wandb"), ("fsdp_config", {"a": 1}), ("chat_template_path", "/etc/shadow"),
    ("resume_from_checkpoint", "/tmp/ckpt"), ("dataset_kwargs", {"skip_prepare_dataset": True}),
])
def test_it_refuses_every_platform_setting(name, value):
    message = refused("dpo", {"sft": {name: value}})
    assert f"sft.{name}" in message and "platform" in message


def test_it_refuses_a_trl_field_that_is_not_a_training_knob():
    message = refused("grpo", {"policy": {"vllm_server_host": "10.0.0.1"}})
    assert "policy.vllm_server_host" in message


def test_a_typo_is_named_with_what_may_be_set():
    message = refused("dpo", {"policy": {"learning_rat": 1e-5}})
    assert "Unknown policy hyper-parameter" in message and "learning_rat" in message and "learning_rate" in message


@pytest.mark.parametrize("section, values, words", [
    ("policy", {"beta": "high"}, "policy.beta must be a number"),
    ("policy", {"learning_rate": {"nested": 1}}, "policy.learning_rate must be a number"),
    ("policy", {"num_train_epochs": True}, "policy.num_train_epochs must be a number"),
    ("policy", {"learning_rate": 0}, "policy.learning_rate must be greater than 0"),
    ("reward", {"lora_dropout": 2}, "reward.lora_dropout must be"),
    ("reward", {"per_device_train_batch_size": 2.5}, "reward.per_device_train_batch_size must be a whole number"),
    ("reward", {"max_steps": 0}, "reward.max_steps"),
    ("reward", {"lora": "yes"}, "reward.lora must be true or false"),
    ("policy", {"lr_scheduler_type": "warp"}, "policy.lr_scheduler_type must be one of"),
    ("eval", {"max_new_tokens": 0}, "eval.max_new_tokens must be at least 1"),
    ("policy", {"num_generations": 1}, "policy.num_generations must be at least 2"),
])
def test_allowed_values_are_type_and_range_checked(section, values, words):
    algorithm = "grpo" if "num_generations" in values else "dpo"
    assert words in refused(algorithm, {section: values})


def test_the_seed_is_a_whole_number():
    assert "seed must be a whole number" in refused("dpo", {"seed": "7"})


def test_it_accepts_the_knobs_users_tune():
    hyperparameters = {
        "seed": 3,
        "reward": {"learning_rate": 2e-5, "num_train_epochs": 2, "max_steps": -1, "per_device_train_batch_size": 8,
                   "gradient_accumulation_steps": 4, "warmup_steps": 0.1, "lr_scheduler_type": "cosine",
                   "weight_decay": 0.01, "max_length": 1024, "lora": True, "lora_r": 16, "lora_alpha": 32,
                   "lora_dropout": 0.05, "save_steps": 50, "logging_steps": 5, "use_margin": True},
        "policy": {"beta": 0.2, "max_length": 768, "loss_type": ["sigmoid"], "max_steps": 100, "seed": 5},
        "sft": {"enabled": True, "max_length": 256, "packing": False},
        "eval": {"prompts": 32, "max_new_tokens": 64, "max_pairs": 100},
    }
    assert config.validate_hyperparameters("dpo", hyperparameters) == hyperparameters
    grpo = {"policy": {"num_generations": 4, "temperature": 0.9, "max_completion_length": 64, "beta": 0.04,
                       "top_p": 0.95, "max_prompts": 10}}
    assert config.validate_hyperparameters("grpo", grpo) == grpo
    ppo = {"policy": {"kl_coef": 0.1, "total_episodes": 64, "response_length": 16, "num_ppo_epochs": 2,
                      "stop_token": "eos", "missing_eos_penalty": 1.0, "max_prompt_length": 128}}
    assert config.validate_hyperparameters("ppo", ppo) == ppo


def test_a_refused_launch_creates_nothing(labeled_project, admin_user, monkeypatch):
    monkeypatch.setattr(services, "enqueue_chain", lambda round: None)
    with pytest.raises(services.RoundError, match="policy.deepspeed"):
        services.launch_round(labeled_project, user=admin_user, algorithm="dpo",
                              hyperparameters={"policy": {"deepspeed": "/etc/passwd"}})
    assert not Round.objects.exists()


def test_a_stored_setting_outside_the_list_never_reaches_trl():
    """Runs planned before the allow-list keep their config; the trainer takes only allowed keys."""
    kwargs = config.trainer_kwargs("dpo", {"beta": 0.2, "deepspeed": "/etc/passwd", "hub_token": "x",
                                           "model_init_kwargs": {"trust_remote_code": True}},
                                   output_dir="/srv/run-1", seed=1)
    assert kwargs["beta"] == 0.2 and kwargs["output_dir"] == "/srv/run-1"
    assert not {"deepspeed", "hub_token", "model_init_kwargs"} & set(kwargs)


def test_every_allowed_key_is_a_field_of_the_installed_trl_config():
    """The allow-list lives in rlhf/config.py so that validation needs no TRL import; a TRL
    upgrade that renames or retypes a field fails here, not in a round."""
    for stage, knobs in config.ALLOWED.items():
        cls = config.config_class(stage)
        if cls is None:  # the evaluation: rankloop's own settings only
            assert all(not knob.trl for knob in knobs.values())
            continue
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for name, knob in knobs.items():
            if not knob.trl:
                assert name not in fields, f"{stage}.{name} is a TRL field now: mark it as one"
                continue
            assert name in fields, f"{stage}.{name} is no field of {cls.__name__}"
            field = fields[name]
            default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
            if name in config.DEFAULTS.get(stage, {}):
                default = config.DEFAULTS[stage][name]
            if default is not None:
                knob.check(f"{stage}.{name}", default)  # TRL's (or our) default passes our own check


def test_every_default_is_a_setting_a_round_may_set():
    """The round defaults come from rlhf/training/defaults.py (the measured ones): each must be on
    its stage's allow-list and pass its check, or a round launched without settings would fail."""
    for stage, values in config.DEFAULTS.items():
        if stage == "seed":
            continue
        for name, value in values.items():
            assert name in config.ALLOWED[stage], f"{stage}.{name}"
            config.ALLOWED[stage][name].check(f"{stage}.{name}", value)


def test_the_round_defaults_are_the_measured_ones():
    """LoRA and LoRA's learning rates by default (issue 10: 5e-7 full-weight DPO did not move the policy)."""
    assert config.DEFAULTS["dpo"]["lora"] and config.DEFAULTS["dpo"]["learning_rate"] == defaults.DPO["learning_rate"]
    assert config.DEFAULTS["reward"]["max_length"] == defaults.REWARD["max_length"]
    assert config.model_config(config.DEFAULTS["grpo"])["use_peft"] is True
