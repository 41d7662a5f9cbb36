"""Train a reward model (Bradley-Terry, TRL's RewardTrainer) on preference pairs.

The model starts from the policy directory (model_name_or_path) as a sequence classifier with one
score and shares the policy's tokenizer. Rows: {"prompt", "chosen", "rejected", "margin"?} in TRL's
conversational (lists of messages) or standard (strings) format; "margin" is used only with
use_margin: true. With eval_file (held-out pairs), the trainer evaluates at the end, at the same
max_length as training, and metrics.json gets the exact held-out accuracy over pairs:
{"eval_accuracy", "eval_pairs", "eval_correct", ...}; without held-out pairs eval_accuracy is null
(not measured). Pairs longer than max_length are left out of training and evaluation (TRL's
RewardTrainer filters them); eval_pairs_skipped counts them.

    accelerate launch --quiet --num_processes 1 rlhf/training/reward.py --config run/config.yaml

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
class RewardScriptArguments(common.StageArguments):
    eval_file: str | None = field(default=None, metadata={"help": "JSON Lines file of held-out pairs."})
    use_margin: bool = field(default=False, metadata={"help": "Use the rows' margin in the loss."})


PAIR_TEXTS = ("prompt", "chosen", "rejected")


def load_pairs(path, training_args, use_margin: bool):
    dataset = common.load_rows(path, training_args,
                               required=("chosen", "rejected") + (("margin",) if use_margin else ()),
                               texts=PAIR_TEXTS, what="preference")
    if not use_margin and "margin" in dataset.column_names:
        dataset = dataset.remove_columns("margin")  # RewardTrainer uses a margin column whenever there is one
    if use_margin and any(m is None for m in dataset["margin"]):
        raise common.DataError(f"{path}: use_margin is set but some rows have a null margin")
    return dataset


def pair_outcomes(logits, labels):
    """Per pair: 1 if the chosen answer scores above the rejected one. The trainer's logits are the
    chosen rows, then the rejected rows, of a batch."""
    logits = logits[0] if isinstance(logits, (tuple, list)) else logits
    chosen, rejected = logits.squeeze(-1).chunk(2)
    return (chosen > rejected).long()


def count_pairs(prediction):
    """Exact counts over all held-out pairs (TRL's own eval_accuracy averages per-batch figures)."""
    import numpy as np

    outcomes = np.asarray(prediction.predictions).reshape(-1)
    return {"pairs": int(outcomes.size), "correct": int(outcomes.sum())}


def main(script_args, training_args, model_args):
    from transformers import AutoModelForSequenceClassification, set_seed
    from trl import RewardTrainer, get_peft_config

    common.check_processes(training_args)
    path = common.require_model_path(model_args)
    progress = common.progress_writer(script_args, training_args)
    tokenizer = common.load_tokenizer(path)
    train = load_pairs(script_args.train_file, training_args, script_args.use_margin)
    heldout = (load_pairs(script_args.eval_file, training_args, script_args.use_margin)
               if script_args.eval_file else None)

    set_seed(training_args.seed)  # the new score head's initialization repeats with the seed
    model = AutoModelForSequenceClassification.from_pretrained(
        path, num_labels=1, **common.model_init_kwargs(model_args, training_args))
    model.config.pad_token_id = tokenizer.pad_token_id
    if model_args.use_peft and model_args.lora_task_type == "CAUSAL_LM":  # ModelConfig's default
        model_args.lora_task_type = "SEQ_CLS"  # keeps the new score head trainable
    trainer = RewardTrainer(
        model=model, args=training_args, train_dataset=train, eval_dataset=heldout, processing_class=tokenizer,
        compute_metrics=count_pairs if heldout is not None else None,
        preprocess_logits_for_metrics=pair_outcomes if heldout is not None else None,
        peft_config=get_peft_config(model_args),
        callbacks=[ProgressCallback(script_args.progress_file)])
    output = trainer.train(resume_from_checkpoint=common.checkpoint_to_resume(script_args, training_args, progress))

    metrics = common.train_metrics(trainer, output)
    metrics.update(train_pairs=len(trainer.train_dataset), train_rows=len(train),
                   eval_accuracy=None, eval_pairs=0, eval_correct=0, eval_rows=len(heldout) if heldout else 0)
    if heldout is not None:
        figures = trainer.evaluate()
        pairs, correct = int(figures.get("eval_pairs", 0)), int(figures.get("eval_correct", 0))
        metrics.update(eval_pairs=pairs, eval_correct=correct, eval_accuracy=correct / pairs if pairs else None,
                       eval_pairs_skipped=len(heldout) - pairs, eval_loss=figures.get("eval_loss"))
        progress.message(f"held-out accuracy {correct}/{pairs}")
    common.save_final(trainer, trainer.model, tokenizer, script_args.final_path(training_args.output_dir),
                      common.stored_dtype(path))
    common.write_json(Path(training_args.output_dir) / "metrics.json", metrics,
                      main_process=trainer.accelerator.is_main_process)


def make_parser():
    from trl import ModelConfig, RewardConfig, TrlParser

    return TrlParser((RewardScriptArguments, RewardConfig, ModelConfig))


if __name__ == "__main__":
    common.run(main, make_parser())
