"""What the stage scripts share: their own arguments, checked data files, the tokenizer, weights
dtype, resuming from checkpoints, the final save and the metrics file. Nothing here knows about
the platform: the scripts take files and write files."""
from __future__ import annotations

import json
import os
import shutil
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from rlhf.training.progress import ProgressWriter, jsonable


class DataError(ValueError):
    """A data file the script cannot train on; the message names the file, the line and why."""


@dataclass
class StageArguments:
    """The script's own arguments, beside TRL's config and ModelConfig."""

    train_file: str = field(metadata={"help": "JSON Lines file of the training rows."})
    progress_file: str | None = field(
        default=None, metadata={"help": "Append progress as JSON Lines to this file (begin/step/log/end/error)."})
    final_dir: str | None = field(
        default=None, metadata={"help": "Where the finished model goes (default: <output_dir>/final). It appears "
                                        "only once complete: it is written as <final_dir>.tmp, then renamed."})
    resume: bool = field(
        default=True, metadata={"help": "Resume from the last complete checkpoint in output_dir when there is one "
                                        "(default). false starts over and removes the old checkpoints."})

    def final_path(self, output_dir: str) -> Path:
        return Path(self.final_dir) if self.final_dir else Path(output_dir) / "final"


# --- data files -----------------------------------------------------------------------------------


def _text_kind(value, name: str, where: str) -> str:
    """'standard' (a string) or 'conversational' (a list of {"role", "content"} messages)."""
    if isinstance(value, str):
        return "standard"
    if isinstance(value, list) and value and all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
            for m in value):
        return "conversational"
    raise DataError(f"{where}: {name} must be a string or a non-empty list of {{\"role\", \"content\"}} messages")


def check_and_read(path: str, *, required: tuple[str, ...], texts: tuple[str, ...], what: str) -> list[dict]:
    """Read a JSON Lines file line by line and say exactly what is wrong with it, if anything
    (datasets' own errors on a bad file do not name the line). Returns its rows."""
    file = Path(path)
    if not file.is_file():
        raise DataError(f"{what} file {path} does not exist")
    rows, kinds = [], {}
    with file.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            where = f"{path} line {number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
            if not isinstance(row, dict):
                raise DataError(f"{where}: expected a JSON object, got {type(row).__name__}")
            missing = [name for name in required if name not in row]
            if missing:
                raise DataError(f"{where}: missing {', '.join(missing)} (a {what} row needs {', '.join(required)})")
            for name in texts:
                if name in row:
                    kind = _text_kind(row[name], name, where)
                    if kinds.setdefault(name, kind) != kind:
                        raise DataError(f"{where}: {name} is {kind} but earlier rows are {kinds[name]}; "
                                        "use one format in a file")
            rows.append(row)
    if not rows:
        raise DataError(f"{what} file {path} has no rows")
    return rows


def load_rows(path: str, training_args, *, required: tuple[str, ...], texts: tuple[str, ...] = (), what: str):
    """The rows of a checked JSON Lines file as a datasets.Dataset (the main process loads first,
    the others then read its cache)."""
    from datasets import load_dataset

    check_and_read(path, required=required, texts=texts, what=what)
    with process_state(training_args).main_process_first():
        return load_dataset("json", data_files=str(path), split="train")


# --- models -------------------------------------------------------------------------------------


def model_init_kwargs(model_args, training_args) -> dict:
    """from_pretrained keyword arguments, as TRL's own scripts build them. ModelConfig.dtype
    (float32 by default) is what the weights train in: bf16 weights train very slowly on a CPU."""
    return dict(revision=model_args.model_revision,
                trust_remote_code=getattr(training_args, "trust_remote_code", False),
                attn_implementation=model_args.attn_implementation, dtype=model_args.dtype)


def stored_dtype(path: str):
    """The dtype a model directory's weights are stored in (its config says), to save the result in."""
    import torch
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(path)
    dtype = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype, None)
    return dtype if isinstance(dtype, torch.dtype) else torch.float32


def load_tokenizer(path: str, *, padding_side: str | None = None):
    """The tokenizer of a model directory, with a pad token (its eos token when it has none)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, **({"padding_side": padding_side} if padding_side else {}))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def require_model_path(model_args):
    if not model_args.model_name_or_path:
        raise ValueError("model_name_or_path is required: the directory of the model to start from")
    return model_args.model_name_or_path


# --- processes, checkpoints, the final save -------------------------------------------------------


def process_state(training_args):
    """accelerate's PartialState of the run, as TrainingArguments sets it up (use_cpu included).
    (PPOConfig shadows TrainingArguments.world_size with a field of its own, so ask the state.)"""
    training_args.device  # noqa: B018 - sets the process group up, once
    return training_args.distributed_state


def check_processes(training_args):
    """Processes that were launched together but did not join one group would each train on all
    of the data. On a CPU, accelerate launch --multi_gpu starts them; use_cpu: true (or
    ACCELERATE_USE_CPU=true) makes them join over gloo."""
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    joined = process_state(training_args).num_processes
    if launched > 1 and joined != launched:
        raise RuntimeError(
            f"{launched} processes were launched but this one trains alone (world size {joined}); "
            "on a CPU set use_cpu: true in the config (or ACCELERATE_USE_CPU=true)")


def cores_per_process(processes: int) -> int:
    """This machine's cores (those this process may use) shared out between a run's CPU processes.
    Launchers say it to accelerate launch, which otherwise sets OMP_NUM_THREADS=1 for a CPU process
    started without its --cpu flag: a stage then trained on one core (measured: the reward stage's
    step of 8 pairs took 14.6 s on one of a 2-core box's cores, 8.2 s on both)."""
    return max(1, len(os.sched_getaffinity(0)) // max(processes, 1))


def last_complete_checkpoint(output_dir) -> str | None:
    """The newest complete checkpoint-N folder. A process killed while saving leaves one without
    its trainer_state.json (transformers' get_last_checkpoint would pick it and fail)."""
    path = Path(output_dir)
    if not path.is_dir():
        return None
    complete = [p for p in path.glob("checkpoint-*")
                if p.name.rsplit("-", 1)[-1].isdigit() and (p / "trainer_state.json").is_file()]
    return str(max(complete, key=lambda p: int(p.name.rsplit("-", 1)[-1]))) if complete else None


def progress_writer(script_args, training_args) -> ProgressWriter:
    """The script's own progress lines (not the trainer's), from the main process."""
    return ProgressWriter(script_args.progress_file, enabled=process_state(training_args).is_main_process)


def checkpoint_to_resume(script_args, training_args, progress: ProgressWriter) -> str | None:
    """The checkpoint to resume from (script_args.resume, the default), or None to start over;
    starting over removes the old checkpoints, so none of them is later taken for this run's."""
    checkpoint = last_complete_checkpoint(training_args.output_dir)
    if script_args.resume:
        if checkpoint:
            progress.message(f"resuming from {checkpoint}")
        return checkpoint
    state = process_state(training_args)
    with state.main_process_first():
        if state.is_main_process:
            for old in Path(training_args.output_dir).glob("checkpoint-*"):
                shutil.rmtree(old, ignore_errors=True)
    return None


def save_final(trainer, model, tokenizer, final_dir: Path, dtype):
    """Full weights (LoRA merged in), cast to `dtype`, and the tokenizer, into final_dir, by the
    main process. Written to final_dir.tmp and renamed, so a half-written model is never taken
    for a finished one."""
    from peft import PeftModel

    accelerator = trainer.accelerator
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        model = accelerator.unwrap_model(model)
        if isinstance(model, PeftModel):
            model = model.merge_and_unload()
        model = model.to(dtype)
        final_dir = Path(final_dir)
        partial = final_dir.with_name(final_dir.name + ".tmp")
        shutil.rmtree(partial, ignore_errors=True)
        model.save_pretrained(partial)
        tokenizer.save_pretrained(partial)
        if final_dir.exists():
            shutil.rmtree(final_dir)
        os.replace(partial, final_dir)
    accelerator.wait_for_everyone()


def write_json(path, data, *, main_process: bool = True):
    """Write a JSON file whole (tmp then rename), from the main process only; NaN and infinities
    (not JSON) become null."""
    if not main_process:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(json.dumps(jsonable(data), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(partial, path)


def train_metrics(trainer, train_output) -> dict:
    """What training itself reports: mean and last logged loss, steps, time."""
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    metrics = dict(getattr(train_output, "metrics", None) or {})
    metrics.update(global_step=trainer.state.global_step, final_loss=losses[-1] if losses else None,
                   world_size=trainer.accelerator.num_processes)
    return metrics


def run(main, parser):
    """Parse (--config YAML and flags) and run main; a failure is written to the progress file
    and raised, so the process exits non-zero with the cause as the last line of its stderr."""
    progress = ProgressWriter(None)
    try:
        parsed = parser.parse_args_and_config()
        progress = ProgressWriter(getattr(parsed[0], "progress_file", None))
        main(*parsed)
    except Exception as exc:
        progress.write("error", log="".join(traceback.format_exception_only(exc)).strip(),
                       rank=int(os.environ.get("RANK", "0")))
        raise
    finally:
        sys.stdout.flush()
