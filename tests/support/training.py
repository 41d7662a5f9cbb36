"""The training tests' machinery: the settings every CPU config needs, the synthetic data's sizes,
a launcher that runs a stage script by hand as a user would (accelerate launch, a YAML config, JSON
Lines files) with a trap for Django on its path, the session's jobs (script runs started two at a
time in the background, each run once and shared by the tests that check it), and running a
stage's main() in this process."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

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


def wanted_jobs(items) -> list[str]:
    """The jobs the collected tests use, as fixtures or as parameters naming fixtures."""
    names = []
    for item in items:
        values = list(getattr(item, "fixturenames", []))
        for value in getattr(getattr(item, "callspec", None), "params", {}).values():
            values += list(value) if isinstance(value, (tuple, list)) else [value]
        names += [v for v in values if isinstance(v, str) and v in JOBS and v not in names]
    return names


def job_fixture(name):
    """A session fixture named `name` that gives the job's run."""
    @pytest.fixture(scope="session", name=name)
    def run(jobs):
        return jobs.get(name)
    return run


def evaluation_of(run: Run) -> dict:
    """What evaluate.py wrote."""
    return json.loads((run.output_dir / "evaluation.json").read_text())


def run_stage_in_process(script: str, folder: Path, monkeypatch, *args: str) -> Path:
    """A stage's main() in this process (quicker than a launch, for what needs no other process),
    with the CPU settings and `args` as its command line; returns its output dir, folder/out."""
    import importlib

    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(folder / "datasets-cache"))
    module = importlib.import_module(f"rlhf.training.{script}")
    parsed = module.make_parser().parse_args_and_config(args=[
        "--output_dir", str(folder / "out"), "--save_strategy", "no", *[f"--{k}={v}" for k, v in CPU.items()],
        *args])
    module.main(*parsed)
    return folder / "out"
