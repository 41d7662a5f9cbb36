"""Optimize the policy directly on preference pairs with DPO (TRL's DPOTrainer).

The model starts from model_name_or_path; the reference model is that same starting policy (TRL
loads a copy, or with LoRA (use_peft) uses the model with its adapters disabled). Rows:
{"prompt", "chosen", "rejected", ...} in TRL's conversational or standard format; other columns
(id, margin) are ignored. eval_file (optional) is passed as the trainer's eval_dataset, used when
eval_strategy is not "no".

    accelerate launch --quiet --num_processes 1 rlhf/training/dpo.py --config run/config.yaml

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
class DPOScriptArguments(common.StageArguments):
    eval_file: str | None = field(default=None, metadata={"help": "JSON Lines file of held-out pairs."})


def load_pairs(path, training_args):
    dataset = common.load_rows(path, training_args, required=("prompt", "chosen", "rejected"),
                               texts=("prompt", "chosen", "rejected"), what="preference")
    return dataset.select_columns(["prompt", "chosen", "rejected"])


def main(script_args, training_args, model_args):
    from trl import DPOTrainer, get_peft_config

    common.check_processes(training_args)
    path = common.require_model_path(model_args)
    progress = common.progress_writer(script_args, training_args)
    tokenizer = common.load_tokenizer(path)
    train = load_pairs(script_args.train_file, training_args)
    heldout = load_pairs(script_args.eval_file, training_args) if script_args.eval_file else None

    training_args.model_init_kwargs = common.model_init_kwargs(model_args, training_args)
    trainer = DPOTrainer(
        model=path, ref_model=None, args=training_args, train_dataset=train, eval_dataset=heldout,
        processing_class=tokenizer, peft_config=get_peft_config(model_args),
        callbacks=[ProgressCallback(script_args.progress_file)])
    output = trainer.train(resume_from_checkpoint=common.checkpoint_to_resume(script_args, training_args, progress))

    metrics = common.train_metrics(trainer, output)
    metrics.update(train_pairs=len(trainer.train_dataset), train_rows=len(train))
    common.save_final(trainer, trainer.model, tokenizer, script_args.final_path(training_args.output_dir),
                      common.stored_dtype(path))
    common.write_json(Path(training_args.output_dir) / "metrics.json", metrics,
                      main_process=trainer.accelerator.is_main_process)


def make_parser():
    from trl import DPOConfig, ModelConfig, TrlParser

    return TrlParser((DPOScriptArguments, DPOConfig, ModelConfig))


if __name__ == "__main__":
    common.run(main, make_parser())
