"""The stage scripts run by hand on the tiny model: each writes a loadable model, its metrics and
its progress; training moves the right way on learnable data; two processes split the data."""
from __future__ import annotations

import json
from collections import Counter

import pytest

from tests.support import measure, synthetic
from tests.support.training import HELDOUT_PAIRS, TRAIN_PAIRS, evaluation_of, run_stage_in_process

pytestmark = pytest.mark.slow

TRAINING_RUNS = ["reward_run", "reward_run_2p", "dpo_run", "dpo_run_2p", "sft_run", "grpo_run", "rloo_run", "ppo_run"]
# Fixed prompts (not trained on) and seed for the before/after samples.
PROBE_PROMPTS = [row["prompt"] for row in synthetic.prompt_rows(8, start=9000, seed=9)]


def _load_causal(path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)


@pytest.mark.parametrize("run_name", TRAINING_RUNS)
def test_it_writes_begin_step_and_end_progress_lines(request, run_name):
    run = request.getfixturevalue(run_name)
    events = [line["event"] for line in run.progress]
    assert events[0] == "begin" and "step" in events and events[-1] in {"end", "log"}
    assert "end" in events
    end = next(line for line in run.progress if line["event"] == "end")
    assert end["step"] == end["total"] > 0
    assert all({"time", "step", "total", "event"} <= set(line) for line in run.progress)
    assert "error" not in events


@pytest.mark.parametrize("run_name", ["sft_run", "dpo_run", "grpo_run", "rloo_run", "ppo_run"])
def test_it_saves_a_policy_that_loads_and_generates(request, run_name):
    import torch

    run = request.getfixturevalue(run_name)
    model, tokenizer = _load_causal(run.final)
    ids = tokenizer.apply_chat_template(PROBE_PROMPTS[0], add_generation_prompt=True, return_tensors="pt",
                                        return_dict=True)
    out = model.generate(**ids, max_new_tokens=4, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert out.shape[1] > ids["input_ids"].shape[1]
    assert next(model.parameters()).dtype == torch.float32  # the tiny model is stored in float32
    assert not (run.output_dir / "final.tmp").exists()
    assert "global_step" in run.metrics and run.metrics["global_step"] > 0


def test_reward_model_loads_as_a_scorer_in_the_starting_models_dtype(reward_run, tiny_bf16_dir):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(reward_run.final)
    tokenizer = AutoTokenizer.from_pretrained(reward_run.final)
    assert model.config.num_labels == 1 and model.config.pad_token_id == tokenizer.pad_token_id
    assert next(model.parameters()).dtype == torch.bfloat16  # as the (bf16) policy it started from
    assert tokenizer.get_vocab() == AutoTokenizer.from_pretrained(tiny_bf16_dir).get_vocab()


def test_reward_model_separates_heldout_pairs_with_exact_accuracy(reward_run):
    metrics = reward_run.metrics
    assert metrics["eval_pairs"] == HELDOUT_PAIRS and metrics["eval_pairs_skipped"] == 0
    assert metrics["eval_accuracy"] == metrics["eval_correct"] / metrics["eval_pairs"]
    assert metrics["eval_accuracy"] > 0.9, metrics


def test_two_reward_processes_count_every_heldout_pair_exactly_once(reward_run, reward_run_2p):
    one, two = reward_run.metrics, reward_run_2p.metrics
    assert two["world_size"] == 2 and two["eval_pairs"] == one["eval_pairs"] == HELDOUT_PAIRS
    assert two["eval_correct"] == one["eval_correct"]


def test_reward_without_heldout_pairs_reports_accuracy_not_measured(tiny_model_dir, data, tmp_path, monkeypatch):
    out = run_stage_in_process("reward", tmp_path, monkeypatch, "--model_name_or_path", str(tiny_model_dir),
                               "--train_file", str(data["pairs"]), "--max_steps", "1",
                               "--per_device_train_batch_size", "2")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["eval_accuracy"] is None and metrics["eval_pairs"] == 0 and metrics["train_pairs"] == TRAIN_PAIRS
    assert (out / "final" / "model.safetensors").exists()


def test_reward_with_use_margin_trains_on_rows_with_a_margin(tiny_model_dir, data, tmp_path, monkeypatch):
    rows = data["pairs"].read_text().splitlines()[:4]
    with_margin = synthetic.write_jsonl(tmp_path / "margin.jsonl", [json.loads(r) for r in rows])
    out = run_stage_in_process("reward", tmp_path / "ok", monkeypatch, "--model_name_or_path", str(tiny_model_dir),
                               "--train_file", str(with_margin), "--use_margin", "true", "--max_steps", "1",
                               "--per_device_train_batch_size", "2")
    assert (out / "final" / "model.safetensors").exists()


def test_reward_with_use_margin_refuses_a_row_without_one(tiny_model_dir, data, tmp_path, monkeypatch):
    rows = data["pairs"].read_text().splitlines()[:4]
    without = json.loads(rows[1])
    del without["margin"]
    bad = synthetic.write_jsonl(tmp_path / "no-margin.jsonl", [json.loads(rows[0]), without])
    from rlhf.training.common import DataError

    with pytest.raises(DataError, match=f"{bad} line 2: missing margin"):
        run_stage_in_process("reward", tmp_path / "bad", monkeypatch, "--model_name_or_path", str(tiny_model_dir),
                             "--train_file", str(bad), "--use_margin", "true", "--max_steps", "1")


def test_lora_training_saves_full_weights_with_the_adapters_merged(tiny_model_dir, data, tmp_path, monkeypatch):
    from safetensors.torch import load_file

    out = run_stage_in_process("sft", tmp_path, monkeypatch, "--model_name_or_path", str(tiny_model_dir),
                               "--train_file", str(data["sft"]), "--max_steps", "2", "--learning_rate", "0.01",
                               "--per_device_train_batch_size", "4", "--use_peft", "true", "--lora_r", "4",
                               "--lora_alpha", "8", "--lora_target_modules", "all-linear")
    assert not (out / "final" / "adapter_config.json").exists()
    before, after = load_file(tiny_model_dir / "model.safetensors"), load_file(out / "final" / "model.safetensors")
    assert before.keys() == after.keys()  # a plain model, no LoRA weights left
    changed = [name for name in before if not before[name].equal(after[name])]
    assert changed and all("proj" in name for name in changed), changed


def test_a_lora_reward_model_is_saved_as_a_full_sequence_classifier(tiny_model_dir, data, tmp_path, monkeypatch):
    from transformers import AutoModelForSequenceClassification

    out = run_stage_in_process("reward", tmp_path, monkeypatch, "--model_name_or_path", str(tiny_model_dir),
                               "--train_file", str(data["pairs"]), "--max_steps", "2",
                               "--per_device_train_batch_size", "2", "--use_peft", "true", "--lora_r", "4",
                               "--lora_alpha", "8")
    assert not (out / "final" / "adapter_config.json").exists()
    model = AutoModelForSequenceClassification.from_pretrained(out / "final")
    assert model.config.num_labels == 1 and model.config.pad_token_id is not None


def test_a_rerun_from_the_same_files_gives_the_same_model(dpo_run, dpo_rerun):
    from safetensors.torch import load_file

    first, second = (load_file(run.final / "model.safetensors") for run in (dpo_run, dpo_rerun))
    assert first.keys() == second.keys()
    assert all(first[name].equal(second[name]) for name in first)


def test_dpo_raises_the_chosen_minus_rejected_margin(dpo_run, tiny_model_dir, data):
    rows = [json.loads(line) for line in data["pairs_standard"].read_text().splitlines()][:32]
    before = measure.preference_margin(tiny_model_dir, rows)
    after = measure.preference_margin(dpo_run.final, rows)
    assert after > before + 0.5, f"log p(chosen) - log p(rejected): {before:.3f} before, {after:.3f} after DPO"


def test_sft_makes_the_policy_say_what_the_demonstrations_say(sft_run, tiny_model_dir):
    before = measure.marker_share(tiny_model_dir, PROBE_PROMPTS)
    after = measure.marker_share(sft_run.final, PROBE_PROMPTS)
    assert after >= before + 0.1, f"share of sampled answers with {synthetic.MARKER!r}: {before} -> {after}"


@pytest.mark.parametrize("run_name", ["ppo_run", "grpo_run", "rloo_run"])
def test_rl_against_a_marker_reward_model_raises_the_markers_frequency(request, run_name, sft_run):
    run = request.getfixturevalue(run_name)
    before = measure.marker_share(sft_run.final, PROBE_PROMPTS)
    after = measure.marker_share(run.final, PROBE_PROMPTS)
    assert after >= min(before + 0.25, 0.95), (
        f"{run_name}: share of sampled answers with {synthetic.MARKER!r} {before:.2f} -> {after:.2f}")


# --- two processes -----------------------------------------------------------------------------------


def _consumed(probe_dir):
    return {rank: [int(i) for i in (probe_dir / f"rank-{rank}.txt").read_text().split()] for rank in (0, 1)}


@pytest.mark.parametrize("runs", [("reward_run_2p", range(TRAIN_PAIRS), 3), ("dpo_run_2p", range(2000, 2064), 2)],
                         ids=["reward", "dpo"])
def test_two_processes_train_on_disjoint_shards_of_the_data(request, runs):
    run_name, ids, epochs = runs
    run = request.getfixturevalue(run_name)
    assert run.metrics["world_size"] == 2
    consumed = _consumed(run.probe)
    per_epoch = len(ids) // 2
    assert len(consumed[0]) == len(consumed[1]) == per_epoch * epochs
    for epoch in range(epochs):
        shard = {rank: consumed[rank][epoch * per_epoch:(epoch + 1) * per_epoch] for rank in (0, 1)}
        assert not set(shard[0]) & set(shard[1]), f"epoch {epoch}: both processes trained on the same examples"
        assert sorted(shard[0] + shard[1]) == list(ids), f"epoch {epoch}: not every example once"
    assert Counter(consumed[0] + consumed[1]) == Counter({i: epochs for i in ids})


# One process x batch 4 and two x batch 2 see the same global batches in the same order (the
# sampler's seed is shared, accelerate deals batches to the processes in turn) and DDP averages
# the two halves' gradients, so they follow the same path up to float rounding and padding widths.
LOSS_TOLERANCE = 1e-3  # absolute, on the last logged training loss


@pytest.mark.parametrize("runs", [("reward_run", "reward_run_2p"), ("dpo_run", "dpo_run_2p")], ids=["reward", "dpo"])
def test_two_processes_reach_the_one_process_loss(request, runs):
    one, two = (request.getfixturevalue(name) for name in runs)
    assert one.metrics["global_step"] == two.metrics["global_step"]
    difference = abs(one.metrics["final_loss"] - two.metrics["final_loss"])
    print(f"{runs[0]}: final loss 1 process {one.metrics['final_loss']:.6f}, 2 processes "
          f"{two.metrics['final_loss']:.6f}, difference {difference:.2e}")
    assert difference <= LOSS_TOLERANCE


# --- evaluation ----------------------------------------------------------------------------------------


def test_evaluate_finds_a_gain_for_a_policy_that_learned_the_marker(evaluate_gain_run):
    result = evaluation_of(evaluate_gain_run)
    assert result["reward_diff"]["verdict"] == "gain" and result["reward_diff"]["low"] > 0, result["reward_diff"]
    assert result["win_rate"]["verdict"] == "gain" and result["win_rate"]["low"] > 0.5, result["win_rate"]
    assert result["judge"]["reward_diff"]["verdict"] == "gain"
    assert result["kl_new_old"]["mean"] > 0 and result["kl_new_old"]["verdict"] == "changed"
    assert len(result["per_prompt"]) == 16 and result["figures"]["eval_prompts"] == 16
    assert all(len(p["answers_new"]) == 4 for p in result["per_prompt"])


def test_evaluate_finds_no_change_for_the_same_policy(evaluate_same_run):
    result = evaluation_of(evaluate_same_run)
    for figure in (result["reward_diff"], result["win_rate"], result["judge"]["reward_diff"],
                   result["judge"]["win_rate"], result["kl_new_old"]):
        assert figure["verdict"] == "no detectable change", figure
    assert result["judge_disagreements"] == []


def test_evaluate_without_heldout_pairs_reports_accuracy_not_measured(evaluate_same_run):
    accuracy = evaluation_of(evaluate_same_run)["rm_accuracy"]
    assert accuracy["mean"] is None and accuracy["pairs"] == 0 and accuracy["verdict"] == "not measured"
    assert evaluation_of(evaluate_same_run)["figures"]["rm_accuracy_heldout"] is None


def test_evaluate_reports_reward_model_accuracy_with_its_pair_count(evaluate_gain_run):
    accuracy = evaluation_of(evaluate_gain_run)["rm_accuracy"]
    assert accuracy["pairs"] == HELDOUT_PAIRS and accuracy["method"] == "wilson"
    assert accuracy["mean"] == accuracy["correct"] / accuracy["pairs"] > 0.9
    assert accuracy["low"] < accuracy["mean"] <= accuracy["high"]


def test_evaluate_writes_progress(evaluate_gain_run):
    events = [line["event"] for line in evaluate_gain_run.progress]
    assert events[0] == "begin" and "step" in events and events[-1] == "end"


# --- failures, resume, no Django --------------------------------------------------------------------------


def test_a_bad_data_file_fails_with_the_cause_in_the_last_lines_of_stderr(bad_data_run):
    run = bad_data_run
    assert run.returncode != 0
    last = "\n".join(run.stderr.strip().splitlines()[-3:])
    assert f"{run.bad_file} line 2: not valid JSON" in last, run.stderr[-3000:]
    error = run.progress[-1]
    assert error["event"] == "error" and "line 2" in error["log"]
    assert not (run.output_dir / "final").exists()


def test_it_resumes_from_the_last_complete_checkpoint(sft_resumed_run, sft_run):
    assert {p.name for p in sft_run.output_dir.glob("checkpoint-*")} == {"checkpoint-120", "checkpoint-160"}
    run = sft_resumed_run
    messages = [line["log"] for line in run.progress if line.get("log")]
    assert f"resuming from {run.output_dir / 'checkpoint-160'}" in messages
    begin = next(line for line in run.progress if line["event"] == "begin")
    end = next(line for line in run.progress if line["event"] == "end")
    assert (begin["step"], end["step"], end["total"]) == (160, 176, 176)
    assert (run.final / "model.safetensors").exists()


def test_no_script_process_imported_django(request, launch):
    for name in [*TRAINING_RUNS, "dpo_rerun", "evaluate_gain_run", "evaluate_same_run", "bad_data_run",
                 "sft_resumed_run"]:
        request.getfixturevalue(name)
    assert not launch.trap_file.exists(), launch.trap_file.read_text()[-3000:]
