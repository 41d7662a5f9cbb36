"""Default stage settings (pure data): per stage, the config keys of the stage script (TRL's config
dataclass + ModelConfig, see rlhf/training/__init__.py) and their values. The CPU dicts are sized
for the default model (SmolLM2-135M-Instruct) so that a round on a few hundred pairs finishes in
minutes on a CPU and measurably moves the policy; each value's comment cites the measurement that
chose it (bench/rm_accuracy.py, bench/loop_gain.py; shared 2-core CPU box, HH pairs from
/work/shared/data). The platform fills round configs from these and adds the run's files
(model_name_or_path, train_file, output_dir, ...) and the CPU flags (bf16: false, ...).
"""

LORA = {
    "use_peft": True,
    "lora_r": 16,
    "lora_alpha": 32,
    "lora_dropout": 0.0,
    "lora_target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
}

REWARD_TRAIN_PAIRS_CPU = 256
REWARD = {
    **LORA,
    "learning_rate": 3e-4,
    "num_train_epochs": 1,
    "per_device_train_batch_size": 8,
    "per_device_eval_batch_size": 16,
    "max_length": 128,
    "lr_scheduler_type": "linear",
    "warmup_steps": 5,
    "logging_steps": 5,
}
REWARD_GPU = {**REWARD, "max_length": 512}

DPO = {
    **LORA,
    "learning_rate": 5e-5,
    "beta": 0.1,
    "num_train_epochs": 1,
    "per_device_train_batch_size": 8,
    "max_length": 256,
    "lr_scheduler_type": "linear",
    "warmup_steps": 5,
    "logging_steps": 5,
}
DPO_GPU = {**DPO, "max_length": 512}

GRPO = {
    **LORA,
    "learning_rate": 1e-4,
    "beta": 0.0,
    "max_steps": 20,
    "per_device_train_batch_size": 8,
    "num_generations": 4,
    "max_completion_length": 48,
    "temperature": 1.0,
    "logging_steps": 5,
}

EVALUATE = {
    "samples_per_prompt": 4,
    "max_new_tokens": 48,
    "temperature": 1.0,
    "batch_size": 8,
    "max_prompts": 64,
}

# PPO: not measured on the default model here (no CPU time left for it); the settings of the tiny
# PPO test (tests/training/conftest.py ppo_run) with LoRA's learning rate.
PPO = {
    **LORA,
    "learning_rate": 1e-4,
    "total_episodes": 256,
    "per_device_train_batch_size": 8,
    "num_mini_batches": 1,
    "num_ppo_epochs": 4,
    "local_rollout_forward_batch_size": 8,
    "response_length": 48,
    "kl_coef": 0.05,
    "missing_eos_penalty": 1.0,
    "stop_token": "eos",
    "num_sample_generations": 0,
}
