"""Supervised fine-tuning of the policy on demonstrations (TRL's SFTTrainer): annotators' ideal
answers, or any conversations to imitate.

Rows: {"messages": [{"role", "content"}, ...]} (the whole conversation; the loss covers all its
tokens unless the config asks otherwise, e.g. assistant_only_loss with a template that marks them).

    accelerate launch --quiet --num_processes 1 rlhf/training/sft.py --config run/config.yaml

Output: <output_dir>/final (model + tokenizer, in the starting model's dtype), <output_dir>/metrics.json,
checkpoints in <output_dir> (a rerun resumes from the last complete one).
"""
import sys
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from rlhf.training import common
from rlhf.training.progress import ProgressCallback


@dataclass
class SFTScriptArguments(common.StageArguments):
    pass


def main(script_args, training_args, model_args):
    from trl import SFTTrainer, get_peft_config

    common.check_processes(training_args)
    path = common.require_model_path(model_args)
    progress = common.progress_writer(script_args, training_args)
    tokenizer = common.load_tokenizer(path)
    train = common.load_rows(script_args.train_file, training_args, required=("messages",), texts=("messages",),
                             what="demonstration").select_columns(["messages"])

    training_args.model_init_kwargs = common.model_init_kwargs(model_args, training_args)
    trainer = SFTTrainer(model=path, args=training_args, train_dataset=train, processing_class=tokenizer,
                         peft_config=get_peft_config(model_args),
                         callbacks=[ProgressCallback(script_args.progress_file)])
    output = trainer.train(resume_from_checkpoint=common.checkpoint_to_resume(script_args, training_args, progress))

    metrics = common.train_metrics(trainer, output)
    metrics.update(train_rows=len(train))
    common.save_final(trainer, trainer.model, tokenizer, script_args.final_path(training_args.output_dir),
                      common.stored_dtype(path))
    common.write_json(Path(training_args.output_dir) / "metrics.json", metrics,
                      main_process=trainer.accelerator.is_main_process)


def make_parser():
    from trl import ModelConfig, SFTConfig, TrlParser

    return TrlParser((SFTScriptArguments, SFTConfig, ModelConfig))


if __name__ == "__main__":
    common.run(main, make_parser())
