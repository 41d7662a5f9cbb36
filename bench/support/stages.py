"""The stage scripts (rlhf/training/*.py) as the benchmarks run them: the default model's directory,
the shared HH pairs in TRL's conversational format, a split by prompt, and a launcher that writes a
stage's YAML config and runs it with `accelerate launch` (or plain python for evaluate.py), the
same way a user reruns a stage by hand. No Django here."""
from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import yaml

from rlhf.training.common import cores_per_process

from .rlhf import SHARED_DATA, read_rows
from .server import ROOT

ACCELERATE = str(Path(sys.executable).with_name("accelerate"))
HH_PAIRS = SHARED_DATA / "hh_rlhf_pairs.jsonl.gz"
# What every config needs on a CPU (rlhf/training/__init__.py).
CPU = {"bf16": False, "activation_checkpointing": False, "dataloader_pin_memory": False, "report_to": "none",
       "disable_tqdm": True, "save_strategy": "no", "seed": 0}


def default_model_dir() -> Path:
    """SmolLM2-135M-Instruct converted from the bundled GGUF into var/models (once; the directory
    link_default_model reuses)."""
    from models_app.default_model import DEFAULT_MODEL_DIR, bundled_gguf_path, convert_gguf

    path = ROOT / "var" / "models" / DEFAULT_MODEL_DIR
    if not (path / "config.json").is_file():
        print(f"converting the default model into {path}…", flush=True)
        convert_gguf(bundled_gguf_path(), path)
    return path


def conversational(row: dict) -> dict:
    """A shared pair (chosen/rejected strings after a prompt of messages) as a TRL conversational row."""
    return {"id": row["id"], "prompt": row["prompt"], "chosen": [{"role": "assistant", "content": row["chosen"]}],
            "rejected": [{"role": "assistant", "content": row["rejected"]}]}


def prompt_key(row: dict) -> str:
    return json.dumps(row["prompt"], sort_keys=True)


def bucket(row: dict, salt: str = "") -> float:
    """A stable number in [0, 1) from the row's prompt: rows of one prompt always fall together."""
    digest = hashlib.sha256((salt + prompt_key(row)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64


def hh_pairs(path: Path = HH_PAIRS, *, max_chars: int | None = None) -> list[dict]:
    """The shared HH pairs, conversational, in a stable order by a hash of the prompt (the file is
    sorted by subset: its first few hundred pairs are all harmless-base red-team prompts, whose
    "chosen" answers refuse, so a reward model trained on a prefix of the file learns the opposite
    of what helpful-base wants); with max_chars, only those whose prompt and answers are at most
    that many characters in all (a cheap pre-filter before max_length)."""
    rows = sorted((conversational(r) for r in read_rows(path, 0)), key=lambda r: (bucket(r, "order"), r["id"]))
    if max_chars:
        rows = [r for r in rows if sum(len(m["content"]) for m in r["prompt"])
                + max(len(r["chosen"][0]["content"]), len(r["rejected"][0]["content"])) <= max_chars]
    return rows


def fits(rows: list[dict], tokenizer_dir: Path, max_length: int) -> list[dict]:
    """Pairs whose longer side (chat template over prompt + answer) has at most max_length tokens,
    i.e. the pairs TRL's RewardTrainer keeps at that max_length."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)

    def length(row, side):
        return len(tokenizer.apply_chat_template(row["prompt"] + row[side], tokenize=True,
                                                 return_dict=True)["input_ids"])
    return [r for r in rows if max(length(r, "chosen"), length(r, "rejected")) <= max_length]


def prompt_tokens(rows: list[dict], tokenizer_dir: Path) -> int:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    return sum(len(tokenizer.apply_chat_template(r["prompt"] + r[side], tokenize=True, return_dict=True)["input_ids"])
               for r in rows for side in ("chosen", "rejected"))


def write_jsonl(path: Path, rows) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env(threads: int | None = None) -> dict:
    values = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1",
                  TOKENIZERS_PARALLELISM="false", TRL_EXPERIMENTAL_SILENCE="1", PYTHONPATH=str(ROOT))
    if threads:
        values["OMP_NUM_THREADS"] = str(threads)
    return values


def launch(script: str, config: dict, folder: Path, *, processes: int = 1, threads: int | None = None,
           nice: int = 5, reuse: bool = False) -> dict:
    """Write config as folder/config.yaml and run rlhf/training/<script>.py on it (accelerate launch;
    several processes on a CPU with --multi_gpu and use_cpu, as rlhf/training documents).
    Returns {"seconds", "metrics" (metrics.json, or evaluate.py's output)}; exits on failure with
    the script's last lines. With reuse, a run that already finished in folder with the same
    script, config and process count is not run again: its result (and its seconds) is returned."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = dict(config)
    if script != "evaluate":
        config.setdefault("output_dir", str(folder / "out"))
    config.setdefault("progress_file", str(folder / "progress.jsonl"))
    record = folder / "finished.json"
    identity = {"script": script, "config": config, "processes": processes}
    if reuse and record.exists():
        finished = json.loads(record.read_text())
        if finished["identity"] == json.loads(json.dumps(identity)):
            return _result(script, config, finished["seconds"])
    record.unlink(missing_ok=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    target = [str(ROOT / "rlhf" / "training" / f"{script}.py"), "--config", str(folder / "config.yaml")]
    # accelerate launch gives a CPU process one thread unless told, as rlhf/launcher.py tells it
    cores = ["--num_cpu_threads_per_process", str(threads or cores_per_process(processes))]
    if script == "evaluate":
        command = [sys.executable, *target]
    elif processes == 1:
        command = [ACCELERATE, "launch", "--quiet", *cores, "--num_processes", "1", *target]
    else:
        command = [ACCELERATE, "launch", "--quiet", *cores, "--multi_gpu", "--num_processes", str(processes),
                   "--main_process_port", str(free_port()), *target]
    if nice:
        command = ["nice", "-n", str(nice), *command]
    began = time.perf_counter()
    with (folder / "stderr.txt").open("w") as err:
        done = subprocess.run(command, cwd=ROOT, env=env(threads), stdout=err, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        tail = (folder / "stderr.txt").read_text()[-3000:]
        sys.exit(f"{script} failed ({done.returncode}) after {seconds:.0f} s:\n{tail}")
    record.write_text(json.dumps({"identity": identity, "seconds": seconds}))
    return _result(script, config, seconds)


def _result(script: str, config: dict, seconds: float) -> dict:
    if script == "evaluate":
        metrics = json.loads(Path(config["output_file"]).read_text())
    else:
        metrics = json.loads((Path(config["output_dir"]) / "metrics.json").read_text())
    return {"seconds": seconds, "metrics": metrics,
            "final": None if script == "evaluate" else Path(config["output_dir"]) / "final"}


def figure(value, digits: int = 4):
    return None if value is None else round(float(value), digits)
