"""Score answers with a reward model, for uncertainty-driven labeling: which open tasks' answers
the model cannot tell apart (plain PyTorch + transformers; no Django).

tasks_file rows: {"id": task id, "prompt": [messages] or text, "answers": [text, ...]}. Written to
output_file, one JSON line per task: {"id", "scores": [...], "margin": the smallest gap between two
of its answers' scores, "uncertainty": 1 / (1 + margin), in (0, 1]}. With reward_model_path_previous
(the reward model before this one), "disagreement" is 1.0 when the two models order the task's
answers differently, and is added to "uncertainty" (so disagreements come first).

    python rlhf/training/score.py --config run/score.yaml
"""
import sys
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from rlhf.training import common
from rlhf.training.evaluate import conversation_ids, load_scorer, scores
from rlhf.training.progress import ProgressWriter


@dataclass
class ScoreArguments:
    reward_model_path: str = field(metadata={"help": "Directory of the reward model."})
    tasks_file: str = field(metadata={"help": "JSON Lines: {\"id\", \"prompt\", \"answers\": [text, ...]}."})
    output_file: str = field(metadata={"help": "Where the scores go (JSON Lines)."})
    reward_model_path_previous: str | None = field(
        default=None, metadata={"help": "The reward model before this one: where the two disagree comes first."})
    progress_file: str | None = None
    batch_size: int = 16
    max_length: int = field(default=1024, metadata={"help": "Keep at most this many (last) tokens per answer."})
    dtype: str = "float32"


def task_scores(model, tokenizer, rows, args, progress, step0, total):
    sequences = [conversation_ids(tokenizer, row["prompt"], answer)[-args.max_length:]
                 for row in rows for answer in row["answers"]]
    values = iter(scores(model, tokenizer, sequences, args.batch_size))
    progress.write("step", step0 + 1, total)
    return [[next(values) for _ in row["answers"]] for row in rows]


def order(values):
    return sorted(range(len(values)), key=lambda i: -values[i])


def main(args):
    import json

    rows = common.check_and_read(args.tasks_file, required=("id", "prompt", "answers"), texts=("prompt",),
                                 what="task")
    bad = [row["id"] for row in rows if not isinstance(row["answers"], list) or len(row["answers"]) < 2
           or not all(isinstance(a, str) for a in row["answers"])]
    if bad:
        raise ValueError(f"tasks need two or more answers as text: {bad[:5]}")
    progress = ProgressWriter(args.progress_file)
    total = 2 if args.reward_model_path_previous else 1
    progress.write("begin", 0, total)
    model, tokenizer = load_scorer(args.reward_model_path, args.dtype)
    current = task_scores(model, tokenizer, rows, args, progress, 0, total)
    del model
    previous = None
    if args.reward_model_path_previous:
        model, tokenizer = load_scorer(args.reward_model_path_previous, args.dtype)
        previous = task_scores(model, tokenizer, rows, args, progress, 1, total)
        del model
    with open(args.output_file, "w") as out:
        for i, row in enumerate(rows):
            values = sorted(current[i])
            margin = min(b - a for a, b in zip(values, values[1:]))
            result = {"id": row["id"], "scores": current[i], "margin": margin, "uncertainty": 1 / (1 + margin)}
            if previous is not None:
                disagree = float(order(current[i]) != order(previous[i]))
                result.update(disagreement=disagree, uncertainty=disagree + 1 / (1 + margin))
            out.write(json.dumps(result) + "\n")
    progress.write("end", total, total)


def make_parser():
    from trl import TrlParser

    return TrlParser((ScoreArguments,))


if __name__ == "__main__":
    common.run(main, make_parser())
