"""Optimize the policy with RLOO (TRL's RLOOTrainer) against a trained reward model.

The model starts from model_name_or_path; reward_model_path (a directory written by reward.py, or
any sequence classifier with one score) is the trainer's reward_funcs, with its own tokenizer as
reward_processing_classes. Rows: {"prompt": [messages]} (or a string prompt); other columns are
ignored. beta > 0 adds a KL penalty to the starting policy (TRL loads it as the reference); each
prompt is answered num_generations times and each answer is baselined by the others (leave one out).

    accelerate launch --quiet --num_processes 1 rlhf/training/rloo.py --config run/config.yaml

Output: <output_dir>/final (model + tokenizer, in the starting model's dtype), <output_dir>/metrics.json,
checkpoints in <output_dir> (a rerun resumes from the last complete one).
"""
import sys
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from rlhf.training import common
from rlhf.training.progress import ProgressCallback


@dataclass
class RLOOScriptArguments(common.StageArguments):
    reward_model_path: str = field(default="", metadata={"help": "Directory of the reward model."})


def load_prompts(path, training_args):
    return common.load_rows(path, training_args, required=("prompt",), texts=("prompt",),
                            what="prompt").select_columns(["prompt"])


def main(script_args, training_args, model_args):
    from trl import RLOOTrainer, get_peft_config

    common.check_processes(training_args)
    path = common.require_model_path(model_args)
    if not script_args.reward_model_path:
        raise ValueError("reward_model_path is required: the directory of the reward model")
    progress = common.progress_writer(script_args, training_args)
    tokenizer = common.load_tokenizer(path)
    train = load_prompts(script_args.train_file, training_args)

    training_args.model_init_kwargs = common.model_init_kwargs(model_args, training_args)
    trainer = RLOOTrainer(
        model=path, reward_funcs=script_args.reward_model_path, args=training_args, train_dataset=train,
        processing_class=tokenizer, reward_processing_classes=common.load_tokenizer(script_args.reward_model_path),
        peft_config=get_peft_config(model_args), callbacks=[ProgressCallback(script_args.progress_file)])
    output = trainer.train(resume_from_checkpoint=common.checkpoint_to_resume(script_args, training_args, progress))

    metrics = common.train_metrics(trainer, output)
    metrics.update(train_prompts=len(train))
    common.save_final(trainer, trainer.model, tokenizer, script_args.final_path(training_args.output_dir),
                      common.stored_dtype(path))
    common.write_json(Path(training_args.output_dir) / "metrics.json", metrics,
                      main_process=trainer.accelerator.is_main_process)


def make_parser():
    from trl import ModelConfig, RLOOConfig, TrlParser

    return TrlParser((RLOOScriptArguments, RLOOConfig, ModelConfig))


if __name__ == "__main__":
    common.run(main, make_parser())
