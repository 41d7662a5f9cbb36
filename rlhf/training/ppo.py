"""Optimize the policy with PPO (trl.experimental.ppo.PPOTrainer, TRL 1.12: it is gone from 1.13,
so TRL stays pinned) against a trained reward model, shaped like TRL's examples/scripts/ppo/ppo.py.

The policy and the reference (the same starting weights; with LoRA, the policy with its adapters
disabled) come from model_name_or_path; the reward model and the value model (the critic starts
as a copy of the reward model) from reward_model_path, sharing the policy's tokenizer. Prompts are
tokenized up front with the chat template and LEFT padded, as PPOTrainer's rollouts need. Rows:
{"prompt": [messages]} (or a string prompt); other columns are ignored.

PPO cannot resume: PPOTrainer writes no checkpoint it can restart from, so a rerun starts over
(`resume` is ignored) and save_strategy "no" saves time.

    accelerate launch --quiet --num_processes 1 rlhf/training/ppo.py --config run/config.yaml

Output: <output_dir>/final (the policy + tokenizer, in the starting model's dtype),
<output_dir>/metrics.json.
"""
import sys
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from rlhf.training import common
from rlhf.training.progress import ProgressCallback


@dataclass
class PPOScriptArguments(common.StageArguments):
    max_prompt_length: int = field(default=256, metadata={"help": "Keep at most this many (last) prompt tokens."})


def tokenized_prompts(path, training_args, tokenizer, max_prompt_length: int):
    """input_ids of each prompt (chat template with the assistant turn opened), pre-tokenized."""
    dataset = common.load_rows(path, training_args, required=("prompt",), texts=("prompt",), what="prompt")

    def tokenize(row):
        prompt = row["prompt"]
        if isinstance(prompt, list):
            prompt = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
            ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        else:
            ids = tokenizer(prompt)["input_ids"]
        return {"input_ids": ids[-max_prompt_length:]}

    with common.process_state(training_args).main_process_first():
        return dataset.map(tokenize, remove_columns=dataset.column_names)


def fit_batch_to_prompts(training_args, prompts: int, processes: int) -> None:
    """TRL's PPOTrainer drops an incomplete batch and then cycles its dataloader forever: with fewer
    prompts than one step takes (per-device batch x accumulation x processes) the run would hang,
    not fail. A smaller project gets a smaller step, said on stderr; none at all, a clear error."""
    per_step = training_args.gradient_accumulation_steps * processes
    per_device = prompts // per_step
    if per_device < 1:
        raise ValueError(f"PPO needs at least {per_step} training prompts for one step "
                         f"(gradient_accumulation_steps x processes); there are {prompts}")
    if per_device >= training_args.per_device_train_batch_size:
        return
    print(f"ppo: {prompts} training prompts, fewer than a step of {training_args.per_device_train_batch_size} per "
          f"process: per_device_train_batch_size {per_device}", file=sys.stderr)
    training_args.per_device_train_batch_size = per_device
    training_args.local_rollout_forward_batch_size = min(training_args.local_rollout_forward_batch_size, per_device)
    if per_device % training_args.num_mini_batches:
        training_args.num_mini_batches = 1


def main(script_args, training_args, model_args):
    import dataclasses

    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification
    from trl import get_peft_config
    from trl.experimental.ppo import PPOConfig, PPOTrainer

    common.check_processes(training_args)
    path = common.require_model_path(model_args)
    default_reward = next(f.default for f in dataclasses.fields(PPOConfig) if f.name == "reward_model_path")
    if training_args.reward_model_path in ("", None, default_reward):
        raise ValueError("reward_model_path is required: the directory of the reward model")
    training_args.sft_model_path = path  # the policy starts here (PPOConfig's own field, for the record)
    tokenizer = common.load_tokenizer(path, padding_side="left")  # right padding corrupts the rollouts
    train = tokenized_prompts(script_args.train_file, training_args, tokenizer, script_args.max_prompt_length)

    fit_batch_to_prompts(training_args, len(train), common.process_state(training_args).num_processes)

    init = common.model_init_kwargs(model_args, training_args)
    reward_model = AutoModelForSequenceClassification.from_pretrained(training_args.reward_model_path, num_labels=1,
                                                                      **init)
    value_model = AutoModelForSequenceClassification.from_pretrained(training_args.reward_model_path, num_labels=1,
                                                                     **init)
    policy = AutoModelForCausalLM.from_pretrained(path, **init)
    peft_config = get_peft_config(model_args)
    ref_policy = AutoModelForCausalLM.from_pretrained(path, **init) if peft_config is None else None
    trainer = PPOTrainer(
        args=training_args, processing_class=tokenizer, model=policy, ref_model=ref_policy,
        reward_model=reward_model, value_model=value_model, train_dataset=train, peft_config=peft_config,
        callbacks=[ProgressCallback(script_args.progress_file)])
    trainer.train()

    logged = [entry for entry in trainer.state.log_history if "objective/scores" in entry]
    metrics = common.train_metrics(trainer, None)
    metrics.update(train_prompts=len(train), final_scores=logged[-1]["objective/scores"] if logged else None,
                   first_scores=logged[0]["objective/scores"] if logged else None)
    policy = trainer.accelerator.unwrap_model(trainer.model).policy
    common.save_final(trainer, policy, tokenizer, script_args.final_path(training_args.output_dir),
                      common.stored_dtype(path))
    common.write_json(Path(training_args.output_dir) / "metrics.json", metrics,
                      main_process=trainer.accelerator.is_main_process)


def make_parser():
    from trl import ModelConfig, TrlParser
    from trl.experimental.ppo import PPOConfig

    return TrlParser((PPOScriptArguments, PPOConfig, ModelConfig))


if __name__ == "__main__":
    common.run(main, make_parser())
