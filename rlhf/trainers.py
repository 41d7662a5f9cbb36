"""The stages of a round, each a thin wrapper over a TRL trainer: reward model (RewardTrainer),
policy optimization (PPO from trl.experimental.ppo, GRPO, RLOO with the reward model as
reward_funcs, DPO on the pairs), optional SFT on demonstrations, and the evaluation of the new
policy against the old. A callback writes progress, metrics and heartbeats to the database and
stops the run at its next step when a cancel was asked for."""
from __future__ import annotations

import contextlib
import logging
import shutil
import threading
import time
import warnings
from pathlib import Path

from django.conf import settings
from django.db import close_old_connections, connection
from transformers import TrainerCallback, set_seed

from labeling.models import Prompt

from . import config as round_config
from . import datasets, services
from .models import Round, TrainingRun

logger = logging.getLogger(__name__)


class RunCancelled(Exception):
    """Raised inside a trainer to stop it promptly; TRL's PPO loop ignores should_training_stop."""


class RunCallback(TrainerCallback):
    """Progress, heartbeat, metrics and log tail of a run, written as the trainer goes. Progress
    (and the cancel check) at most every `every_s`, so tiny fast steps do not wait on the database."""

    def __init__(self, run_id: int, every_s: float = 0.5):
        self.run_id = run_id
        self.every_s = every_s
        self.last = 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        services.record_progress(self.run_id, step=state.global_step, total=state.max_steps)

    def on_step_end(self, args, state, control, **kwargs):
        now = time.monotonic()
        if now - self.last < self.every_s and state.global_step < state.max_steps:
            return
        self.last = now
        if services.record_progress(self.run_id, step=state.global_step, total=state.max_steps):
            raise RunCancelled(f"cancelled at step {state.global_step}")

    def on_train_end(self, args, state, control, **kwargs):
        services.record_progress(self.run_id, step=state.global_step, total=state.max_steps)

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        services.record_metrics(self.run_id, state.global_step, logs)
        shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in logs.items())
        services.append_log(self.run_id, f"step {state.global_step}/{state.max_steps}: {shown}\n")


@contextlib.contextmanager
def heartbeating(run_id: int, every_s: float | None = None):
    """Beat from a thread while the run works, so long steps (loading, generation) are not taken
    for a dead worker; the thread dies with the process, which is what the reaper watches."""
    every_s = every_s or settings.RLHF_HEARTBEAT_S
    stop = threading.Event()

    def beat():
        try:
            while not stop.wait(every_s):
                services.heartbeat(run_id)
        finally:
            connection.close()

    thread = threading.Thread(target=beat, name=f"heartbeat-run-{run_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
        close_old_connections()


# --- helpers ------------------------------------------------------------------------------------


def configure_torch():
    import torch

    threads = getattr(settings, "RLHF_TORCH_THREADS", 0)
    if threads:
        torch.set_num_threads(threads)


def run_dir(run: TrainingRun) -> Path:
    """Checkpoints of a run (kept on retry, so training resumes from the last one)."""
    path = Path(run.checkpoint_dir) if run.checkpoint_dir else Path(settings.MODEL_STORE) / "runs" / f"run-{run.pk}"
    if not run.checkpoint_dir:
        TrainingRun.objects.filter(pk=run.pk).update(checkpoint_dir=str(path))
        run.checkpoint_dir = str(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def last_checkpoint(path: Path):
    """The newest complete checkpoint. A worker killed while saving leaves a checkpoint folder
    without its trainer state (transformers' get_last_checkpoint would pick it and fail)."""
    if not path.is_dir():
        return None
    complete = [
        p for p in path.glob("checkpoint-*")
        if p.name.rsplit("-", 1)[-1].isdigit() and (p / "trainer_state.json").is_file()
    ]
    return str(max(complete, key=lambda p: int(p.name.rsplit("-", 1)[-1]))) if complete else None


def discard_checkpoints(run: TrainingRun) -> None:
    """A run that succeeded needs no checkpoint (its model version is saved apart, and a retry
    keeps succeeded runs): delete them, a model's size each, unless RLHF_KEEP_CHECKPOINTS. A
    failed or cancelled run keeps its own, for the retry to resume from."""
    if getattr(settings, "RLHF_KEEP_CHECKPOINTS", False) or not run.checkpoint_dir:
        return
    path = Path(run.checkpoint_dir)
    for checkpoint in path.glob("checkpoint-*"):
        shutil.rmtree(checkpoint, ignore_errors=True)
    with contextlib.suppress(OSError):  # gone, or other files left in it: leave it
        path.rmdir()


def version_dir(kind: str, name: str) -> Path:
    path = Path(settings.MODEL_STORE) / ("reward" if kind == "reward" else "policies") / name
    if path.exists():  # a retried run writes its artifact again
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def version_name(run: TrainingRun, suffix: str) -> str:
    round = run.round
    return f"{round.project.slug}-r{round.number}-{suffix}-run{run.pk}"


def load_tokenizer(version):
    from models_app.loading import load_tokenizer as load, tokenizer_path

    return load(tokenizer_path(version))


def load_fresh(version, *, head="causal"):
    """A model of its own (training mutates it), on CPU; the trainer moves it."""
    from models_app.loading import load_model_uncached

    return for_training(load_model_uncached(version, head=head))


def for_training(model):
    """bf16 weights train very slowly on a CPU: train in float32 there, and save the version in
    the dtype it came in (save_version casts back)."""
    import torch

    model.rankloop_stored_dtype = next(model.parameters()).dtype
    if not torch.cuda.is_available() and model.rankloop_stored_dtype != torch.float32:
        model = model.float()
    return model


def reward_model_from_policy(policy):
    """A sequence classifier (one score) over the policy's weights, sharing its tokenizer."""
    from transformers import AutoModelForSequenceClassification

    from models_app.loading import artifact_path

    if not policy.is_adapter:
        return for_training(AutoModelForSequenceClassification.from_pretrained(str(artifact_path(policy)),
                                                                               num_labels=1))
    import tempfile

    merged = load_fresh(policy)
    with tempfile.TemporaryDirectory() as tmp:
        merged.save_pretrained(tmp)
        return for_training(AutoModelForSequenceClassification.from_pretrained(tmp, num_labels=1))


def lora_config(values: dict, task_type: str):
    if not values.get("lora"):
        return None
    from peft import LoraConfig

    return LoraConfig(task_type=task_type, r=int(values.get("lora_r", 8)), lora_alpha=int(values.get("lora_alpha", 16)),
                      lora_dropout=float(values.get("lora_dropout", 0.0)), target_modules="all-linear")


def merged(model):
    """Full weights out of a (possibly) LoRA-wrapped model, so every version loads on its own."""
    from peft import PeftModel

    return model.merge_and_unload() if isinstance(model, PeftModel) else model


def save_version(model, tokenizer, *, run, kind, suffix, parent, metrics):
    """Write the artifact and register it as a model version of the round's project."""
    from models_app import services as model_services

    name = version_name(run, suffix)
    path = version_dir(kind, name)
    stored_dtype = getattr(model, "rankloop_stored_dtype", None)
    model = merged(model)
    if stored_dtype is not None:
        model = model.to(stored_dtype)
    model.save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return model_services.register_model(
        str(path), kind=kind, name=name, parent=parent, base_model=parent.base_model if parent else "",
        is_adapter=False, user=None, project=run.round.project, metrics=metrics, training_run=run,
    )


def score_conversations(model, tokenizer, conversations, *, batch_size=8, max_length=1024) -> list[float]:
    """The reward model's score of each full conversation (prompt and answer), as it was trained."""
    import torch

    device = next(model.parameters()).device
    scores = []
    model.eval()
    for start in range(0, len(conversations), batch_size):
        texts = [tokenizer.apply_chat_template(c, tokenize=False) for c in conversations[start:start + batch_size]]
        batch = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt",
                          add_special_tokens=False)
        with torch.inference_mode():
            logits = model(**{k: v.to(device) for k, v in batch.items()}).logits
        scores += logits[:, 0].float().tolist()
    return scores


def pair_accuracy(model, tokenizer, rows) -> float | None:
    """Share of preference rows whose chosen answer the reward model scores higher."""
    if not rows:
        return None
    chosen = score_conversations(model, tokenizer, [_conversation(r, "chosen") for r in rows])
    rejected = score_conversations(model, tokenizer, [_conversation(r, "rejected") for r in rows])
    return sum(c > r for c, r in zip(chosen, rejected)) / len(rows)


def _conversation(row, side):
    """A TRL preference row (conversational or standard) as chat messages."""
    prompt, answer = row["prompt"], row[side]
    if isinstance(prompt, str):
        prompt = [{"role": "user", "content": prompt}]
    if isinstance(answer, str):
        answer = [{"role": "assistant", "content": answer}]
    return [*prompt, *answer]


def _train(trainer, run):
    checkpoint = last_checkpoint(Path(trainer.args.output_dir))
    if checkpoint:
        services.append_log(run.pk, f"resuming from {checkpoint}\n")
    trainer.train(resume_from_checkpoint=checkpoint)


# --- stages -----------------------------------------------------------------------------------


def train_reward_model(run: TrainingRun):
    """Bradley-Terry reward model from the round's starting policy; held-out accuracy on the version."""
    from datasets import Dataset
    from trl import RewardTrainer

    round, values = run.round, run.config
    filters = round.data_filters
    datasets.check_enough_data(round.project, filters)
    train_rows = datasets.preference_rows(round.project, filters, split=Prompt.Split.TRAIN)
    heldout_rows = datasets.preference_rows(round.project, filters, split=Prompt.Split.HELDOUT)
    tokenizer = load_tokenizer(round.policy_in)
    set_seed(values.get("seed", 0))  # the new score head's initialization repeats with the seed
    model = reward_model_from_policy(round.policy_in)
    model.config.pad_token_id = tokenizer.pad_token_id
    columns = ["prompt", "chosen", "rejected"] + (["margin"] if values.get("use_margin") else [])
    train = Dataset.from_list([{c: r[c] for c in columns} for r in train_rows])
    args = round_config.trainer_args("reward", values, output_dir=str(run_dir(run)), seed=values.get("seed", 0))
    services.append_log(run.pk, f"reward model: {len(train_rows)} train pairs, {len(heldout_rows)} held-out\n")
    trainer = RewardTrainer(model=model, args=args, train_dataset=train, processing_class=tokenizer,
                            peft_config=lora_config(values, "SEQ_CLS"), callbacks=[RunCallback(run.pk)])
    _train(trainer, run)
    model = merged(trainer.model)
    # Every held-out pair counts: it is the figure the version is judged by.
    accuracy = pair_accuracy(model, tokenizer, heldout_rows)
    metrics = {"heldout_accuracy": accuracy, "pairs_train": len(train_rows), "pairs_heldout": len(heldout_rows)}
    if accuracy is not None:
        services.record_metrics(run.pk, trainer.state.global_step, {"rm_accuracy_heldout": accuracy})
    version = save_version(model, tokenizer, run=run, kind="reward", suffix="rm", parent=round.policy_in,
                           metrics=metrics)
    services.set_round_outputs(round, reward_model=version)
    services.merge_round_metrics(round, {"rm_accuracy_heldout": accuracy, "pairs_train": len(train_rows),
                                         "pairs_heldout": len(heldout_rows)})
    return version


def train_sft(run: TrainingRun):
    """Supervised fine-tuning on annotators' ideal answers, before the policy stage."""
    from datasets import Dataset
    from trl import SFTTrainer

    round, values = run.round, run.config
    rows = datasets.demonstrations(round.project)
    if not rows:
        services.append_log(run.pk, "no ideal answers written by annotators: SFT skipped\n")
        return None
    tokenizer = load_tokenizer(round.policy_in)
    args = round_config.trainer_args("sft", values, output_dir=str(run_dir(run)), seed=values.get("seed", 0))
    trainer = SFTTrainer(model=load_fresh(round.policy_in), args=args, train_dataset=Dataset.from_list(rows),
                         processing_class=tokenizer, callbacks=[RunCallback(run.pk)])
    _train(trainer, run)
    version = save_version(trainer.model, tokenizer, run=run, kind="policy", suffix="sft", parent=round.policy_in,
                           metrics={"demonstrations": len(rows)})
    services.set_round_outputs(round, policy_out=version)
    return version


def train_policy(run: TrainingRun):
    """Optimize the policy with the round's algorithm; the result is the round's policy_out."""
    round, values = run.round, run.config
    start = round.policy_out or round.policy_in  # after SFT, from its output
    if round.reward_model is None:
        raise services.RoundError("The round has no reward model; its reward stage did not finish.")
    tokenizer = load_tokenizer(start)
    args = round_config.trainer_args(run.kind, values, output_dir=str(run_dir(run)), seed=values.get("seed", 0))
    callbacks = [RunCallback(run.pk)]
    peft = lora_config(values, "CAUSAL_LM")
    prompts = datasets.policy_prompts(round.project, limit=values.get("max_prompts"))
    if len(prompts) < 1:
        raise services.RoundError("The project has no training prompts to optimize the policy on.")
    services.append_log(run.pk, f"{run.kind}: {len(prompts)} prompts, starting from {start}\n")
    if run.kind == TrainingRun.Kind.PPO:
        trainer = _ppo_trainer(round, start, tokenizer, args, prompts, values, callbacks, peft)
        with quiet_ppo_ratio_var():
            trainer.train()  # PPOTrainer keeps no resumable checkpoints
        model = trainer.model.policy
    elif run.kind in (TrainingRun.Kind.GRPO, TrainingRun.Kind.RLOO):
        trainer = _online_trainer(run.kind, round, start, tokenizer, args, prompts, callbacks, peft)
        _train(trainer, run)
        model = trainer.model
    elif run.kind == TrainingRun.Kind.DPO:
        trainer = _dpo_trainer(round, start, tokenizer, args, callbacks, peft)
        _train(trainer, run)
        model = trainer.model
    else:
        raise services.RoundError(f"Unknown policy algorithm {run.kind!r}.")
    model = getattr(trainer.accelerator, "unwrap_model", lambda m: m)(model)
    version = save_version(model, tokenizer, run=run, kind="policy", suffix=run.kind, parent=start,
                           metrics={"algorithm": run.kind, "steps": trainer.state.global_step})
    services.set_round_outputs(round, policy_out=version)
    return version


@contextlib.contextmanager
def quiet_ppo_ratio_var():
    """TRL's PPO logs val/ratio_var, the var() of one ratio per (PPO epoch, mini-batch,
    accumulation step); with one of each (the CPU-sized defaults) torch warns "var(): degrees of
    freedom is <= 0" at every step and the figure is NaN, which record_metrics drops anyway.
    Only that warning, only while PPO trains, is silenced."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"var\(\): degrees of freedom is <= 0", category=UserWarning)
        yield


def _ppo_trainer(round, start, tokenizer, args, prompts, values, callbacks, peft):
    from datasets import Dataset
    from trl.experimental.ppo import PPOTrainer

    from models_app.generation import encode_prompt

    # PPO rolls out from pre-tokenized, LEFT-padded prompts; right padding corrupts the rollouts.
    tokenizer.padding_side = "left"
    max_prompt = int(values.get("max_prompt_length", 256))
    ids = [encode_prompt(tokenizer, p, max_prompt_tokens=max_prompt).ids for p in prompts]
    dataset = Dataset.from_dict({"input_ids": ids})
    reward = load_fresh(round.reward_model, head="classification")
    value = load_fresh(round.reward_model, head="classification")  # the critic starts from the reward model
    policy = load_fresh(start)
    policy.train()
    ref = None if peft else load_fresh(start)
    return PPOTrainer(args=args, processing_class=tokenizer, model=policy, ref_model=ref, reward_model=reward,
                      train_dataset=dataset, value_model=value, callbacks=callbacks, peft_config=peft)


def _online_trainer(kind, round, start, tokenizer, args, prompts, callbacks, peft):
    from datasets import Dataset
    from trl import GRPOTrainer, RLOOTrainer

    cls = GRPOTrainer if kind == TrainingRun.Kind.GRPO else RLOOTrainer
    reward = load_fresh(round.reward_model, head="classification")
    return cls(model=load_fresh(start), reward_funcs=reward, args=args,
               train_dataset=Dataset.from_list([{"prompt": p} for p in prompts]), processing_class=tokenizer,
               reward_processing_classes=load_tokenizer(round.reward_model), callbacks=callbacks, peft_config=peft)


def _dpo_trainer(round, start, tokenizer, args, callbacks, peft):
    from datasets import Dataset
    from trl import DPOTrainer

    rows = datasets.preference_rows(round.project, round.data_filters, split=Prompt.Split.TRAIN)
    train = Dataset.from_list([{"prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"]}
                               for r in rows])
    return DPOTrainer(model=load_fresh(start), ref_model=None, args=args, train_dataset=train,
                      processing_class=tokenizer, callbacks=callbacks, peft_config=peft)


# --- evaluation --------------------------------------------------------------------------------


def evaluate_round(run: TrainingRun):
    """New policy against the old on held-out prompts: mean reward of each, reward-model win rate
    of new over old, KL(new || old) on the new policy's answers, and RM accuracy on held-out pairs."""
    from models_app.decoding import validate_decoding
    from models_app.generation import generate_answers
    from models_app.loading import context_length

    round, values = run.round, run.config
    old, new, rm_version = round.policy_in, round.policy_out, round.reward_model
    if new is None or rm_version is None:
        raise services.RoundError("Nothing to evaluate: the round has no new policy or no reward model.")
    split = Prompt.Split.HELDOUT
    prompts = datasets.policy_prompts(round.project, split=split, limit=values.get("prompts", 16))
    if not prompts:
        split = Prompt.Split.TRAIN
        prompts = datasets.policy_prompts(round.project, split=split, limit=values.get("prompts", 16))
        services.append_log(run.pk, "no held-out prompts: evaluating on training prompts\n")
    decoding = validate_decoding({"strategy": "greedy", "max_new_tokens": int(values.get("max_new_tokens", 32))})
    answers = {}
    total = 2 * len(prompts) + 2
    services.record_progress(run.pk, step=0, total=total)
    models = {}
    for step, (label, version) in enumerate((("old", old), ("new", new)), start=1):
        model, tokenizer = load_fresh(version), load_tokenizer(version)
        models[label] = model
        results = generate_answers(model, tokenizer, prompts, dict(decoding), k=1,
                                   max_context=context_length(model, tokenizer))
        answers[label] = [r.texts[0] if r.texts else "" for r in results]
        if services.record_progress(run.pk, step=step * len(prompts), total=total):
            raise RunCancelled("cancelled during evaluation")
    rm, rm_tokenizer = load_fresh(rm_version, head="classification"), load_tokenizer(rm_version)
    rewards = {label: score_conversations(rm, rm_tokenizer, [
        [*p, {"role": "assistant", "content": a}] for p, a in zip(prompts, answers[label])]) for label in answers}
    wins = [1.0 if n > o else 0.5 if n == o else 0.0 for n, o in zip(rewards["new"], rewards["old"])]
    kl = sequence_kl(models["new"], models["old"], load_tokenizer(new), prompts, answers["new"])
    # Scored on the held-out pairs there are now (labeling goes on during training): how many
    # is recorded beside the figure, and none means not measured (None), never a number.
    heldout_rows = datasets.preference_rows(round.project, round.data_filters, split=Prompt.Split.HELDOUT)
    scored = heldout_rows[: values.get("max_pairs", 256)]
    accuracy = pair_accuracy(rm, rm_tokenizer, scored)
    mean = {label: sum(r) / len(r) if r else None for label, r in rewards.items()}
    metrics = {
        "mean_reward_old": mean["old"], "mean_reward_new": mean["new"],
        "reward_gain": mean["new"] - mean["old"] if prompts else None,
        "win_rate": sum(wins) / len(wins) if wins else None, "kl_to_old": kl, "rm_accuracy_heldout": accuracy,
        "rm_accuracy_pairs": len(scored), "eval_prompts": len(prompts), "eval_split": split,
    }
    services.record_metrics(run.pk, total, metrics)
    services.record_progress(run.pk, step=total, total=total)
    services.append_log(run.pk, "evaluation: " + ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={services.shown_metric(v)}" for k, v in metrics.items())
        + "\n")
    services.merge_round_metrics(round, metrics)
    services.finish_evaluation(round)  # evaluated, then the deploy rule, before the run reads as done
    return metrics


def sequence_kl(new_model, old_model, tokenizer, prompts, answers) -> float | None:
    """Mean over prompts of sum over answer tokens of log p_new - log p_old (a Monte-Carlo
    estimate of KL(new || old) on the new policy's own answers)."""
    import torch

    total = 0.0
    for messages, answer in zip(prompts, answers):
        prompt_text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
        answer_ids = tokenizer(answer + (tokenizer.eos_token or ""), add_special_tokens=False)["input_ids"]
        ids = torch.tensor([prompt_ids + answer_ids])
        with torch.inference_mode():
            logp = {}
            for label, model in (("new", new_model), ("old", old_model)):
                logits = model(input_ids=ids.to(model.device)).logits[0, len(prompt_ids) - 1:-1].float()
                logp[label] = torch.log_softmax(logits, -1).gather(
                    -1, ids[0, len(prompt_ids):].unsqueeze(-1).to(logits.device)).squeeze(-1).cpu()
        total += float((logp["new"] - logp["old"]).sum())
    return total / len(prompts) if prompts else None


STAGES = {
    TrainingRun.Kind.SFT: train_sft,
    TrainingRun.Kind.REWARD: train_reward_model,
    TrainingRun.Kind.PPO: train_policy,
    TrainingRun.Kind.GRPO: train_policy,
    TrainingRun.Kind.RLOO: train_policy,
    TrainingRun.Kind.DPO: train_policy,
    TrainingRun.Kind.EVAL: evaluate_round,
}


def execute(run: TrainingRun, *, celery_id: str = "") -> str:
    """Run one stage of a round, start to finish, recording how it ended. Returns the status."""
    if not services.start_run(run, celery_id=celery_id):
        return "skipped"
    run = TrainingRun.objects.select_related(
        "round__project", "round__policy_in", "round__policy_out", "round__reward_model").get(pk=run.pk)
    configure_torch()
    with heartbeating(run.pk):
        try:
            if run.kind == TrainingRun.Kind.EVAL and run.round.state == Round.State.TRAINING:
                services.transition(run.round, Round.State.EVALUATING, note="training done")
            STAGES[run.kind](run)
        except RunCancelled as exc:
            services.append_log(run.pk, f"{exc}\n")
            services.finish_run(run, TrainingRun.Status.CANCELLED)
            return TrainingRun.Status.CANCELLED
        except Exception as exc:  # every failure ends the run with its reason, for the round page
            logger.exception("%s failed", run)
            message = str(exc) or exc.__class__.__name__
            services.append_log(run.pk, f"FAILED: {message}\n")
            services.finish_run(run, TrainingRun.Status.FAILED, error=message)
            return TrainingRun.Status.FAILED
    services.finish_run(run, TrainingRun.Status.SUCCEEDED)
    run.refresh_from_db(fields=["checkpoint_dir"])
    discard_checkpoints(run)
    return TrainingRun.Status.SUCCEEDED
