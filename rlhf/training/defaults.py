"""Default stage settings (pure data): per stage, the config keys of the stage script (TRL's config
dataclass + ModelConfig, see rlhf/training/__init__.py) and their values. The CPU dicts are sized
for the default model (SmolLM2-135M-Instruct) on a CPU; the *_GPU dicts only lengthen the texts.
The platform fills round configs from these and adds the run's files (model_name_or_path,
train_file, output_dir, ...) and the CPU flags (bf16: false, ...).

Each value's comment cites the measurement that chose it. Measured 2026-12-02 on a shared 2-core
CPU box (other engineers' jobs running; the default model trains at about 30 s per step of 8 pairs
there, ~100 tokens/s) with the stage scripts run directly: bench/rm_accuracy.py,
bench/loop_gain.py --quick, and tests/training/test_round_learns.py (tiny model, LoRA, lr 5e-3,
2 epochs: marker round reward gain 3.74 [3.00, 4.48], win rate 0.965 [0.926, 0.992]; random
preferences: judge gain -0.08 [-1.07, 0.90], no detectable change). What is NOT yet shown is
stated beside the value.
"""

# LoRA on every projection of every layer (PEFT target names of Llama-style models). r 16 / alpha
# 32: the tiny-model round above learns the marker with it (share of marker answers up by >= 0.15);
# the default model's reward stage with it trains at the same ~30 s/step as its forward+backward
# costs (LoRA saves the weight gradients and the optimizer state, not the activations).
LORA = {
    "use_peft": True,
    "lora_r": 16,
    "lora_alpha": 32,
    "lora_dropout": 0.0,
    "lora_target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
}

# 640 pairs (80 steps): on a quiet 2-core box (2026-12-03) a step of 8 pairs takes 10.9 s, and
# bench/rm_accuracy.py took 21.2 minutes in all: held-out 0.542 [0.498, 0.585] on 500 pairs (mixed
# subsets, hash order). Its lower bound is NOT yet above 0.5; the 776 training pairs that fit
# max_length 128 would take ~26 minutes. (On a loaded box: 256 pairs, 32 steps, 33.5 minutes.)
REWARD_TRAIN_PAIRS_CPU = 640
REWARD = {
    **LORA,
    # 3e-4 (LoRA), 256 HH pairs, 1 epoch (33.5 min): held-out 0.500 [0.456, 0.544] on 500 pairs (eval_loss
    # 0.722), but those 256 pairs were all harmless-base (the file is sorted by subset; the benches now
    # take a hash order) while the held-out pairs were 218 harmless / 282 helpful: on the first 120
    # held-out pairs, all harmless-base, the same model scores 0.633 [0.544, 0.714]. It learns; the
    # lower bound > 0.5 on 500 mixed pairs with mixed training pairs is NOT yet measured.
    "learning_rate": 3e-4,
    "num_train_epochs": 1,  # one pass over more pairs beats epochs over fewer at equal CPU time (the cost is per pair)
    "per_device_train_batch_size": 8,
    "per_device_eval_batch_size": 16,
    # 128: 1,303 of the 6,267 HH pairs fit (256: 3,540; 512: 5,693); at 256 a step of 8 pairs took
    # the same ~32 s here (300 pairs: 38 steps, ~20 min), so 128 only buys more pairs per minute
    # when the box is less loaded; the GPU default uses 512.
    "max_length": 128,
    "lr_scheduler_type": "linear",
    "warmup_steps": 0,  # runs of 4 to 40 steps: a warm-up of 5 would eat most of the shortest
    "logging_steps": 5,
}
REWARD_GPU = {**REWARD, "max_length": 512}

DPO = {
    **LORA,
    # 1e-4 (LoRA; not 5e-7, a full-weights rate), the top of the 1e-5..1e-4 range because CPU rounds are
    # short. bench/loop_gain.py --quick --pairs 32 (4 steps, 3.2 min): judge win 0.513 [0.464, 0.565],
    # judge gain 0.003 [-0.017, 0.023], KL 0.010, 12 prompts: 4 steps do NOT move the policy; the
    # step count that does (>= 30 steps, i.e. >= 256 pairs) is NOT yet measured on the default model.
    "learning_rate": 1e-4,
    "beta": 0.1,  # TRL's default
    "num_train_epochs": 1,
    "per_device_train_batch_size": 8,
    "max_length": 256,
    "lr_scheduler_type": "linear",
    "warmup_steps": 0,
    "logging_steps": 5,
}
DPO_GPU = {**DPO, "max_length": 512}

GRPO = {
    **LORA,
    # 1e-4 (LoRA). bench/loop_gain.py --quick (8 steps, 3.4 min, 32 tokens): judge win 0.492 [0.448, 0.534],
    # gain 0.005 [-0.047, 0.057], KL 0.018, 12 prompts: no detectable change in 8 steps; NOT yet shown to move.
    "learning_rate": 1e-4,
    "beta": 0.0,  # TRL's default (no reference model: half the memory and forward passes on a CPU)
    "max_steps": 20,
    "per_device_train_batch_size": 8,
    "num_generations": 4,  # 2 prompts x 4 answers per step of 8
    "max_completion_length": 48,
    "temperature": 1.0,
    "logging_steps": 5,
}

# PPO: not measured on the default model here (no CPU time left for it): the settings of the tiny
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

EVALUATE = {
    "samples_per_prompt": 4,  # 16 prompts x 4 answers separate the marker round (gain [3.00, 4.48]) from no change
    "max_new_tokens": 48,
    "temperature": 1.0,
    "batch_size": 8,
    "max_prompts": 64,  # the floor for detecting a change; fewer held-out prompts are all used
}
