"""Runs of the stage scripts, each launched by hand as a user would (accelerate launch, a YAML
config, JSON Lines files) on the tiny model, once per test session and shared by the tests that
check it. Every script process runs with a trap for Django on its path: importing django there
records the attempt (and fails), so each run also checks that the scripts never import it."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.training import synthetic

ROOT = Path(__file__).resolve().parents[2]
ACCELERATE = str(Path(sys.executable).with_name("accelerate"))
# What every config needs on a CPU (the platform writes the same).
CPU = {"bf16": False, "activation_checkpointing": False, "dataloader_pin_memory": False, "report_to": "none",
       "disable_tqdm": True, "logging_steps": 1, "seed": 0}
TRAIN_PAIRS, HELDOUT_PAIRS = 96, 31  # 31: uneven evaluation batches, and shards of 16 and 15


@dataclass
class Run:
    name: str
    returncode: int
    stdout: str
    stderr: str
    output_dir: Path
    progress_file: Path
    seconds: float

    @property
    def final(self) -> Path:
        return self.output_dir / "final"

    @property
    def metrics(self) -> dict:
        return json.loads((self.output_dir / "metrics.json").read_text())

    @property
    def progress(self) -> list[dict]:
        if not self.progress_file.exists():
            return []
        return [json.loads(line) for line in self.progress_file.read_text().splitlines()]

    def check(self):
        assert self.returncode == 0, f"{self.name} failed ({self.returncode}):\n{self.stderr[-4000:]}"
        return self


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Launcher:
    def __init__(self, base: Path):
        self.base = base
        self.trap_file = base / "django-imports.txt"
        trap = base / "django-trap" / "django"
        trap.mkdir(parents=True)
        (trap / "__init__.py").write_text(
            "import os, traceback\n"
            "with open(os.environ['RANKLOOP_DJANGO_TRAP'], 'a') as f:\n"
            "    f.write(''.join(traceback.format_stack()) + '\\n')\n"
            "raise ImportError('rlhf.training must not import django')\n")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO")}
        self.env.update(
            HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1", TOKENIZERS_PARALLELISM="false",
            TRL_EXPERIMENTAL_SILENCE="1", OMP_NUM_THREADS="1", HF_DATASETS_CACHE=str(base / "datasets-cache"),
            RANKLOOP_DJANGO_TRAP=str(self.trap_file), PYTHONPATH=str(trap.parent))
        self.timings: dict[str, float] = {}

    def __call__(self, name: str, script: str, config: dict, *, processes: int = 1, probe: bool = False,
                 runner: str = "accelerate", extra_env: dict | None = None) -> Run:
        """Write `config` as <name>/config.yaml and run the script on it. `output_dir` and
        `progress_file` default to the run's folder."""
        folder = self.base / name
        folder.mkdir(parents=True, exist_ok=True)
        config = dict(config)
        if script != "evaluate":
            config.setdefault("output_dir", str(folder / "out"))
        config.setdefault("progress_file", str(folder / "progress.jsonl"))
        (folder / "config.yaml").write_text(yaml.safe_dump(config))
        target = [str(Path("tests/training/shard_probe.py"))] if probe else []
        target += [f"rlhf/training/{script}.py", "--config", str(folder / "config.yaml")]
        if runner == "python":
            command = [sys.executable, *target]
        elif processes == 1:
            command = [ACCELERATE, "launch", "--quiet", "--num_processes", "1", *target]
        else:
            command = [ACCELERATE, "launch", "--quiet", "--multi_gpu", "--num_processes", str(processes),
                       "--main_process_port", str(free_port()), *target]
        env = dict(self.env, **(extra_env or {}))
        start = time.monotonic()
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        seconds = time.monotonic() - start
        self.timings[name] = seconds
        (folder / "stderr.txt").write_text(done.stderr)
        return Run(name, done.returncode, done.stdout, done.stderr,
                   Path(config.get("output_dir", folder)), Path(config["progress_file"]), seconds)


@pytest.fixture(scope="session")
def launch(tmp_path_factory):
    launcher = Launcher(tmp_path_factory.mktemp("training-runs"))
    yield launcher
    if launcher.timings:
        print("\nscript runs (s): " + ", ".join(f"{k} {v:.1f}" for k, v in launcher.timings.items()))


@pytest.fixture(scope="session")
def data(tmp_path_factory):
    """The synthetic data files (see synthetic.py): pairs, held-out pairs on other prompts,
    demonstrations, RL prompts and held-out evaluation prompts."""
    d = tmp_path_factory.mktemp("training-data")
    w = synthetic.write_jsonl
    return {
        "pairs": w(d / "pairs.jsonl", synthetic.marker_pairs(TRAIN_PAIRS)),
        "heldout": w(d / "heldout.jsonl", synthetic.marker_pairs(HELDOUT_PAIRS, start=1000, seed=1)),
        "pairs_standard": w(d / "pairs-standard.jsonl", synthetic.marker_pairs(64, start=2000, seed=2,
                                                                             conversational=False)),
        "sft": w(d / "sft.jsonl", synthetic.sft_rows(64, marker_share=0.5, start=3000, seed=3)),
        "rl_prompts": w(d / "rl-prompts.jsonl", synthetic.prompt_rows(32, start=4000, seed=4)),
        "eval_prompts": w(d / "eval-prompts.jsonl", synthetic.prompt_rows(16, start=5000, seed=5)),
    }


@pytest.fixture(scope="session")
def tiny_bf16_dir(tiny_model_dir, tmp_path_factory):
    """The tiny model stored in bfloat16, like the default model: results must be saved so too."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = tmp_path_factory.mktemp("tiny-bf16")
    AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.bfloat16).save_pretrained(path)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(path)
    return path


def reward_config(start, data, **overrides):
    return {**CPU, "model_name_or_path": str(start), "train_file": str(data["pairs"]),
            "num_train_epochs": 3, "per_device_train_batch_size": 4, "learning_rate": 1e-3, "max_length": 128,
            "save_strategy": "no", **overrides}


def dpo_config(start, data, **overrides):
    return {**CPU, "model_name_or_path": str(start), "train_file": str(data["pairs_standard"]),
            "num_train_epochs": 2, "per_device_train_batch_size": 4, "learning_rate": 5e-4, "beta": 0.1,
            "max_length": 128, "save_strategy": "no", **overrides}


# --- the runs: jobs started two at a time in the background -----------------------------------------


@dataclass
class Context:
    launch: Launcher
    data: dict
    tiny: Path
    tiny_bf16: Path


JOBS: dict[str, tuple[tuple[str, ...], object]] = {}


def job(*needs: str):
    """A script run, once per session, after the runs it `needs`; its fixture has its name."""
    def register(function):
        JOBS[function.__name__] = (needs, function)
        return function
    return register


@job()
def reward_run(ctx, runs):
    """One process, batch 4, with held-out pairs: the reward model the policy stages use."""
    return ctx.launch("reward", "reward",
                      reward_config(ctx.tiny_bf16, ctx.data, eval_file=str(ctx.data["heldout"]))).check()


@job()
def reward_run_2p(ctx, runs):
    """Two processes x batch 2 on the same data and seed, each process recording the training
    examples it consumed."""
    probe = ctx.launch.base / "reward-2p-probe"
    probe.mkdir()
    run = ctx.launch("reward-2p", "reward", reward_config(ctx.tiny_bf16, ctx.data, per_device_train_batch_size=2,
                                                          use_cpu=True, eval_file=str(ctx.data["heldout"])),
                     processes=2, probe=True, extra_env={"SHARD_PROBE_DIR": str(probe)}).check()
    run.probe = probe
    return run


@job()
def dpo_run(ctx, runs):
    return ctx.launch("dpo", "dpo", dpo_config(ctx.tiny, ctx.data)).check()


@job()
def dpo_rerun(ctx, runs):
    """The DPO run again, from its own config file, into another output dir."""
    return ctx.launch("dpo-rerun", "dpo", dpo_config(ctx.tiny, ctx.data)).check()


@job()
def dpo_run_2p(ctx, runs):
    probe = ctx.launch.base / "dpo-2p-probe"
    probe.mkdir()
    run = ctx.launch("dpo-2p", "dpo", dpo_config(ctx.tiny, ctx.data, per_device_train_batch_size=2, use_cpu=True),
                     processes=2, probe=True, extra_env={"SHARD_PROBE_DIR": str(probe)}).check()
    run.probe = probe
    return run


def sft_config(ctx, **overrides):
    return {**CPU, "model_name_or_path": str(ctx.tiny), "train_file": str(ctx.data["sft"]), "num_train_epochs": 20,
            "per_device_train_batch_size": 8, "learning_rate": 3e-3, "max_length": 128, **overrides}


@job()
def sft_run(ctx, runs):
    """Demonstrations of which half say the marker: the starting policy of the RL stages.
    Checkpoints every 40 steps (of 160), for the resume test."""
    return ctx.launch("sft", "sft", sft_config(ctx, save_strategy="steps", save_steps=40, save_total_limit=2)).check()


@job("sft_run")
def sft_resumed_run(ctx, runs):
    """The SFT run's checkpoints, and a newer incomplete one, in a fresh output dir; trained on
    for two more epochs."""
    out = ctx.launch.base / "sft-resumed" / "out"
    out.mkdir(parents=True)
    for checkpoint in runs["sft_run"].output_dir.glob("checkpoint-*"):
        shutil.copytree(checkpoint, out / checkpoint.name)
    (out / "checkpoint-200").mkdir()  # what a process killed while saving leaves: no trainer_state.json
    (out / "checkpoint-200" / "config.json").write_text("{}")
    return ctx.launch("sft-resumed", "sft", sft_config(ctx, num_train_epochs=22, save_strategy="no",
                                                       output_dir=str(out))).check()


@job()
def bad_data_run(ctx, runs):
    """Reward training on a file whose second line is not JSON."""
    bad = ctx.launch.base / "bad.jsonl"
    bad.write_text(ctx.data["pairs"].read_text().splitlines()[0] + "\n{\"prompt\": [oops\n")
    run = ctx.launch("bad-data", "reward", {**CPU, "model_name_or_path": str(ctx.tiny), "train_file": str(bad)})
    run.bad_file = bad
    return run


def online_config(runs, data, **overrides):
    return {**CPU, "model_name_or_path": str(runs["sft_run"].final),
            "reward_model_path": str(runs["reward_run"].final), "train_file": str(data["rl_prompts"]),
            "max_steps": 40, "per_device_train_batch_size": 8, "num_generations": 8, "max_completion_length": 12,
            "learning_rate": 1e-3, "beta": 0.0, "save_strategy": "no", **overrides}


@job("sft_run", "reward_run")
def grpo_run(ctx, runs):
    return ctx.launch("grpo", "grpo", online_config(runs, ctx.data)).check()


@job("sft_run", "reward_run")
def rloo_run(ctx, runs):
    return ctx.launch("rloo", "rloo", online_config(runs, ctx.data)).check()


@job("sft_run", "reward_run")
def ppo_run(ctx, runs):
    return ctx.launch("ppo", "ppo", {
        **CPU, "model_name_or_path": str(runs["sft_run"].final), "reward_model_path": str(runs["reward_run"].final),
        "train_file": str(ctx.data["rl_prompts"]), "total_episodes": 128, "per_device_train_batch_size": 8,
        "num_mini_batches": 1, "num_ppo_epochs": 4, "local_rollout_forward_batch_size": 8, "response_length": 12,
        "learning_rate": 1e-3, "kl_coef": 0.01, "missing_eos_penalty": 0.0, "stop_token": "eos",
        "num_sample_generations": 0, "save_strategy": "no"}).check()


def evaluate_config(name, ctx, old, new, reward, judge, **overrides):
    return {"old_policy_path": str(old), "new_policy_path": str(new), "reward_model_path": str(reward),
            "judge_model_path": str(judge), "prompts_file": str(ctx.data["eval_prompts"]),
            "pairs_file": str(ctx.data["heldout"]), "output_file": str(ctx.launch.base / name / "evaluation.json"),
            "samples_per_prompt": 4, "max_new_tokens": 12, "max_length": 128, "seed": 0, **overrides}


@job("sft_run", "grpo_run", "reward_run", "reward_run_2p")
def evaluate_gain_run(ctx, runs):
    """The GRPO policy (it learned to say the marker) against its starting point; the judge is
    the other reward model."""
    return ctx.launch("evaluate-gain", "evaluate", evaluate_config(
        "evaluate-gain", ctx, runs["sft_run"].final, runs["grpo_run"].final, runs["reward_run"].final,
        runs["reward_run_2p"].final)).check()


@job("sft_run", "reward_run", "reward_run_2p")
def evaluate_same_run(ctx, runs):
    """A policy against itself (the same weights), without held-out pairs; run with plain python,
    which works as well."""
    config = evaluate_config("evaluate-same", ctx, runs["sft_run"].final, runs["sft_run"].final,
                             runs["reward_run"].final, runs["reward_run_2p"].final)
    del config["pairs_file"]
    return ctx.launch("evaluate-same", "evaluate", config, runner="python").check()


class Jobs:
    """Runs the jobs the session's tests need, two at a time (the CI box has two cores, and a run
    is mostly one busy Python process), in an order where each job's needs are submitted first, so
    a job waiting for them never waits on one still queued behind it."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.pool = ThreadPoolExecutor(max_workers=2)
        self.futures: dict[str, Future] = {}

    def start(self, name: str):
        if name in self.futures:
            return
        needs, function = JOBS[name]
        for need in needs:
            self.start(need)
        waits = {need: self.futures[need] for need in needs}
        self.futures[name] = self.pool.submit(lambda: function(self.ctx, {k: f.result() for k, f in waits.items()}))

    def get(self, name: str) -> Run:
        self.start(name)
        return self.futures[name].result()


def _wanted(items) -> list[str]:
    """The jobs the collected tests use, as fixtures or as parameters naming fixtures."""
    names = []
    for item in items:
        values = list(getattr(item, "fixturenames", []))
        for value in getattr(getattr(item, "callspec", None), "params", {}).values():
            values += list(value) if isinstance(value, (tuple, list)) else [value]
        names += [v for v in values if isinstance(v, str) and v in JOBS and v not in names]
    return names


@pytest.fixture(scope="session")
def jobs(request, launch, data, tiny_model_dir, tiny_bf16_dir):
    scheduler = Jobs(Context(launch, data, Path(tiny_model_dir), Path(tiny_bf16_dir)))
    for name in _wanted(request.session.items):
        scheduler.start(name)
    yield scheduler
    scheduler.pool.shutdown(wait=True, cancel_futures=True)


def _job_fixture(name):
    @pytest.fixture(scope="session", name=name)
    def run(jobs):
        return jobs.get(name)
    return run


for _name in JOBS:
    globals()[f"_{_name}_fixture"] = _job_fixture(_name)
