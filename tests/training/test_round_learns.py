"""One round with the default settings (rlhf/training/defaults.py: LoRA, its learning rates, the
evaluation's samples), scaled for the tiny model, learns what the preferences say and the evaluation
can tell: on the marker task (answers with the marker are always preferred) reward -> DPO ->
evaluate.py raises the marker's frequency in the new policy's samples and reports a reward gain
whose 95% interval excludes zero; on random preferences the same round reports no detectable
change by a judge that knows the marker (and the reward model's held-out accuracy is at chance)."""
from __future__ import annotations

import pytest

from rlhf.training import defaults
from tests.support import measure, synthetic
from tests.support.training import CPU, TRAIN_PAIRS, evaluation_of, job, job_fixture

pytestmark = pytest.mark.slow

# The tiny model is a random 2-layer Llama (hidden 64): LoRA on it needs a larger learning rate and
# more passes than on SmolLM2 (the defaults' values), and its texts are short.
TINY = {"learning_rate": 5e-3, "num_train_epochs": 2, "max_steps": -1, "per_device_train_batch_size": 8,
        "max_length": 128, "warmup_steps": 0, "logging_steps": 1}  # max_steps -1: by epochs, not the CPU step budget
PROBE_PROMPTS = [row["prompt"] for row in synthetic.prompt_rows(8, start=9000, seed=9)]


def _stage(name, stage_defaults, start, train_file, **overrides):
    return {**stage_defaults, **CPU, **TINY, "model_name_or_path": str(start), "train_file": str(train_file),
            "save_strategy": "no", **overrides}


def _random_files(ctx):
    folder = ctx.launch.base / "random-data"
    folder.mkdir(exist_ok=True)
    return (synthetic.write_jsonl(folder / "pairs.jsonl", synthetic.random_pairs(TRAIN_PAIRS, seed=11)),
            synthetic.write_jsonl(folder / "heldout.jsonl", synthetic.random_pairs(31, start=1000, seed=12)))


def _evaluate(name, ctx, old, new, reward, judge, pairs):
    return ctx.launch(name, "evaluate", {
        **defaults.EVALUATE, "old_policy_path": str(old), "new_policy_path": str(new),
        "reward_model_path": str(reward), "judge_model_path": str(judge),
        "prompts_file": str(ctx.data["eval_prompts"]), "pairs_file": str(pairs),
        "output_file": str(ctx.launch.base / name / "evaluation.json"), "max_new_tokens": 12,
        "max_length": TINY["max_length"], "seed": 0}).check()


@job("sft_run")
def default_dpo_run(ctx, runs):
    """DPO with the default settings from the SFT policy (half its answers say the marker) on the
    marker pairs; the round's reward model is the session's reward_run (same pairs)."""
    return ctx.launch("default-dpo", "dpo", _stage("default-dpo", defaults.DPO, runs["sft_run"].final,
                                                    ctx.data["pairs"])).check()


@job("sft_run", "default_dpo_run", "reward_run", "reward_run_2p")
def default_round_evaluation(ctx, runs):
    return _evaluate("default-round-evaluate", ctx, runs["sft_run"].final, runs["default_dpo_run"].final,
                     runs["reward_run"].final, runs["reward_run_2p"].final, ctx.data["heldout"])


@job()
def random_reward_run(ctx, runs):
    pairs, heldout = _random_files(ctx)
    return ctx.launch("random-reward", "reward", _stage("random-reward", defaults.REWARD, ctx.tiny_bf16, pairs,
                                                        eval_file=str(heldout))).check()


@job("sft_run")
def random_dpo_run(ctx, runs):
    pairs, _ = _random_files(ctx)
    return ctx.launch("random-dpo", "dpo", _stage("random-dpo", defaults.DPO, runs["sft_run"].final, pairs)).check()


@job("sft_run", "random_dpo_run", "random_reward_run", "reward_run")
def random_round_evaluation(ctx, runs):
    """The judge is the marker reward model: it would see a policy that moved toward (or away from)
    the marker."""
    _, heldout = _random_files(ctx)
    return _evaluate("random-round-evaluate", ctx, runs["sft_run"].final, runs["random_dpo_run"].final,
                     runs["random_reward_run"].final, runs["reward_run"].final, heldout)


for _name in ("default_dpo_run", "default_round_evaluation", "random_reward_run", "random_dpo_run",
              "random_round_evaluation"):
    globals()[_name] = job_fixture(_name)


def test_a_default_round_on_learnable_preferences_shows_a_gain(default_round_evaluation, default_dpo_run, sft_run):
    before = measure.marker_share(sft_run.final, PROBE_PROMPTS)
    after = measure.marker_share(default_dpo_run.final, PROBE_PROMPTS)
    assert after >= before + 0.15, f"share of sampled answers with {synthetic.MARKER!r}: {before:.2f} -> {after:.2f}"
    result = evaluation_of(default_round_evaluation)
    gain = result["reward_diff"]
    assert gain["verdict"] == "gain" and gain["low"] > 0, gain
    assert result["judge"]["reward_diff"]["verdict"] == "gain", result["judge"]["reward_diff"]
    assert result["figures"]["eval_prompts"] == 16


def test_a_default_round_on_random_preferences_shows_no_detectable_change(random_round_evaluation, random_dpo_run,
                                                                           sft_run):
    """By the judge (which did not train on the round's labels) and by the reward model's held-out
    accuracy. (The round's own reward model can report a small gain here: it and DPO fit the same
    noise, e.g. the chosen answers' average length in this sample; the judge is the guard.)"""
    result = evaluation_of(random_round_evaluation)
    assert result["rm_accuracy"]["verdict"] == "no detectable change", result["rm_accuracy"]
    assert result["judge"]["reward_diff"]["verdict"] == "no detectable change", result["judge"]["reward_diff"]
    before = measure.marker_share(sft_run.final, PROBE_PROMPTS)
    after = measure.marker_share(random_dpo_run.final, PROBE_PROMPTS)
    assert after < before + 0.15, f"share of sampled answers with {synthetic.MARKER!r}: {before:.2f} -> {after:.2f}"
