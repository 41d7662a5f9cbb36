"""The session's runs of the stage scripts on the tiny model (the machinery is in
tests/support/training.py): the launcher, the synthetic data files, and the jobs, one fixture each.
Every script process runs with a trap for Django on its path: importing django there records the
attempt (and fails), so each run also checks that the scripts never import it."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support import synthetic
from tests.support.training import (
    CPU,
    HELDOUT_PAIRS,
    JOBS,
    TRAIN_PAIRS,
    Context,
    Jobs,
    Launcher,
    job,
    job_fixture,
    wanted_jobs,
)


@pytest.fixture(scope="session")
def launch(tmp_path_factory):
    launcher = Launcher(tmp_path_factory.mktemp("training-runs"))
    yield launcher
    if launcher.timings:
        print("\nscript runs (s): " + ", ".join(f"{k} {v:.1f}" for k, v in launcher.timings.items()))


@pytest.fixture(scope="session")
def data(tmp_path_factory):
    """The synthetic data files (see tests/support/synthetic.py): pairs, held-out pairs on other prompts,
    demonstrations, RL prompts and held-out evaluation prompts."""
    d = tmp_path_factory.mktemp("training-data")
    w = synthetic.write_jsonl
    return {
        "pairs": w(d / "pairs.jsonl", synthetic.marker_pairs(TRAIN_PAIRS)),
        "heldout": w(d / "heldout.jsonl", synthetic.marker_pairs(HELDOUT_PAIRS, start=1000, seed=1)),
        "pairs_standard": w(d / "pairs-standard.jsonl", synthetic.marker_pairs(64, start=2000, seed=2,
                                                                             conversational=False)),
        "sft": w(d / "sft.jsonl", synthetic.sft_rows(64, marker_share=0.5, start=3000, seed=3)),
        "rl_prompts": w(d / "rl-prompts.jsonl", synthetic.prompt_rows(32, start=4000, seed=4)),
        "eval_prompts": w(d / "eval-prompts.jsonl", synthetic.prompt_rows(16, start=5000, seed=5)),
    }


@pytest.fixture(scope="session")
def tiny_bf16_dir(tiny_model_dir, tmp_path_factory):
    """The tiny model stored in bfloat16, like the default model: results must be saved so too."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = tmp_path_factory.mktemp("tiny-bf16")
    AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.bfloat16).save_pretrained(path)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(path)
    return path


def reward_config(start, data, **overrides):
    return {**CPU, "model_name_or_path": str(start), "train_file": str(data["pairs"]),
            "num_train_epochs": 3, "per_device_train_batch_size": 4, "learning_rate": 1e-3, "max_length": 128,
            "save_strategy": "no", **overrides}


def dpo_config(start, data, **overrides):
    return {**CPU, "model_name_or_path": str(start), "train_file": str(data["pairs_standard"]),
            "num_train_epochs": 2, "per_device_train_batch_size": 4, "learning_rate": 5e-4, "beta": 0.1,
            "max_length": 128, "save_strategy": "no", **overrides}


# --- the runs: jobs started two at a time in the background -----------------------------------------


@job()
def reward_run(ctx, runs):
    """One process, batch 4, with held-out pairs: the reward model the policy stages use."""
    return ctx.launch("reward", "reward",
                      reward_config(ctx.tiny_bf16, ctx.data, eval_file=str(ctx.data["heldout"]))).check()


@job()
def reward_run_2p(ctx, runs):
    """Two processes x batch 2 on the same data and seed, each process recording the training
    examples it consumed."""
    probe = ctx.launch.base / "reward-2p-probe"
    probe.mkdir()
    run = ctx.launch("reward-2p", "reward", reward_config(ctx.tiny_bf16, ctx.data, per_device_train_batch_size=2,
                                                          use_cpu=True, eval_file=str(ctx.data["heldout"])),
                     processes=2, probe=True, extra_env={"SHARD_PROBE_DIR": str(probe)}).check()
    run.probe = probe
    return run


@job()
def dpo_run(ctx, runs):
    return ctx.launch("dpo", "dpo", dpo_config(ctx.tiny, ctx.data)).check()


@job()
def dpo_rerun(ctx, runs):
    """The DPO run again, from its own config file, into another output dir."""
    return ctx.launch("dpo-rerun", "dpo", dpo_config(ctx.tiny, ctx.data)).check()


@job()
def dpo_run_2p(ctx, runs):
    probe = ctx.launch.base / "dpo-2p-probe"
    probe.mkdir()
    run = ctx.launch("dpo-2p", "dpo", dpo_config(ctx.tiny, ctx.data, per_device_train_batch_size=2, use_cpu=True),
                     processes=2, probe=True, extra_env={"SHARD_PROBE_DIR": str(probe)}).check()
    run.probe = probe
    return run


def sft_config(ctx, **overrides):
    return {**CPU, "model_name_or_path": str(ctx.tiny), "train_file": str(ctx.data["sft"]), "num_train_epochs": 20,
            "per_device_train_batch_size": 8, "learning_rate": 3e-3, "max_length": 128, **overrides}


@job()
def sft_run(ctx, runs):
    """Demonstrations of which half say the marker: the starting policy of the RL stages.
    Checkpoints every 40 steps (of 160), for the resume test."""
    return ctx.launch("sft", "sft", sft_config(ctx, save_strategy="steps", save_steps=40, save_total_limit=2)).check()


@job("sft_run")
def sft_resumed_run(ctx, runs):
    """The SFT run's checkpoints, and a newer incomplete one, in a fresh output dir; trained on
    for two more epochs."""
    out = ctx.launch.base / "sft-resumed" / "out"
    out.mkdir(parents=True)
    for checkpoint in runs["sft_run"].output_dir.glob("checkpoint-*"):
        shutil.copytree(checkpoint, out / checkpoint.name)
    (out / "checkpoint-200").mkdir()  # what a process killed while saving leaves: no trainer_state.json
    (out / "checkpoint-200" / "config.json").write_text("{}")
    return ctx.launch("sft-resumed", "sft", sft_config(ctx, num_train_epochs=22, save_strategy="no",
                                                       output_dir=str(out))).check()


@job()
def bad_data_run(ctx, runs):
    """Reward training on a file whose second line is not JSON."""
    bad = ctx.launch.base / "bad.jsonl"
    bad.write_text(ctx.data["pairs"].read_text().splitlines()[0] + "\n{\"prompt\": [oops\n")
    run = ctx.launch("bad-data", "reward", {**CPU, "model_name_or_path": str(ctx.tiny), "train_file": str(bad)})
    run.bad_file = bad
    return run


def online_config(runs, data, **overrides):
    return {**CPU, "model_name_or_path": str(runs["sft_run"].final),
            "reward_model_path": str(runs["reward_run"].final), "train_file": str(data["rl_prompts"]),
            "max_steps": 40, "per_device_train_batch_size": 8, "num_generations": 8, "max_completion_length": 12,
            "learning_rate": 1e-3, "beta": 0.0, "save_strategy": "no", **overrides}


@job("sft_run", "reward_run")
def grpo_run(ctx, runs):
    return ctx.launch("grpo", "grpo", online_config(runs, ctx.data)).check()


@job("sft_run", "reward_run")
def rloo_run(ctx, runs):
    return ctx.launch("rloo", "rloo", online_config(runs, ctx.data)).check()


@job("sft_run", "reward_run")
def ppo_run(ctx, runs):
    return ctx.launch("ppo", "ppo", {
        **CPU, "model_name_or_path": str(runs["sft_run"].final), "reward_model_path": str(runs["reward_run"].final),
        "train_file": str(ctx.data["rl_prompts"]), "total_episodes": 128, "per_device_train_batch_size": 8,
        "num_mini_batches": 1, "num_ppo_epochs": 4, "local_rollout_forward_batch_size": 8, "response_length": 12,
        "learning_rate": 1e-3, "kl_coef": 0.01, "missing_eos_penalty": 0.0, "stop_token": "eos",
        "num_sample_generations": 0, "save_strategy": "no"}).check()


def evaluate_config(name, ctx, old, new, reward, judge, **overrides):
    return {"old_policy_path": str(old), "new_policy_path": str(new), "reward_model_path": str(reward),
            "judge_model_path": str(judge), "prompts_file": str(ctx.data["eval_prompts"]),
            "pairs_file": str(ctx.data["heldout"]), "output_file": str(ctx.launch.base / name / "evaluation.json"),
            "samples_per_prompt": 4, "max_new_tokens": 12, "max_length": 128, "seed": 0, **overrides}


@job("sft_run", "grpo_run", "reward_run", "reward_run_2p")
def evaluate_gain_run(ctx, runs):
    """The GRPO policy (it learned to say the marker) against its starting point; the judge is
    the other reward model."""
    return ctx.launch("evaluate-gain", "evaluate", evaluate_config(
        "evaluate-gain", ctx, runs["sft_run"].final, runs["grpo_run"].final, runs["reward_run"].final,
        runs["reward_run_2p"].final)).check()


@job("sft_run", "reward_run", "reward_run_2p")
def evaluate_same_run(ctx, runs):
    """A policy against itself (the same weights), without held-out pairs; run with plain python,
    which works as well."""
    config = evaluate_config("evaluate-same", ctx, runs["sft_run"].final, runs["sft_run"].final,
                             runs["reward_run"].final, runs["reward_run_2p"].final)
    del config["pairs_file"]
    return ctx.launch("evaluate-same", "evaluate", config, runner="python").check()


@pytest.fixture(scope="session")
def jobs(request, launch, data, tiny_model_dir, tiny_bf16_dir):
    scheduler = Jobs(Context(launch, data, Path(tiny_model_dir), Path(tiny_bf16_dir)))
    for name in wanted_jobs(request.session.items):
        scheduler.start(name)
    yield scheduler
    scheduler.pool.shutdown(wait=True, cancel_futures=True)


for _name in JOBS:
    globals()[f"_{_name}_fixture"] = job_fixture(_name)
