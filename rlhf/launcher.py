"""Every stage of a round as a process of its own: the platform orchestrates, the stage scripts
of rlhf/training/ train.

For a run, `execute` writes into the run's folder (MODEL_STORE/runs/run-<id>/):

    train.jsonl, heldout.jsonl, prompts.jsonl   the dataset snapshot (rows from rlhf.datasets)
    config.yaml      the stage's TRL config, ModelConfig and script arguments (rlhf.config)
    launcher.json    the launcher settings it resolved (project's, then the round's)
    command.sh       the exact command line (also on the run: TrainingRun.command), to rerun by hand
    progress.jsonl   what the script reports (rlhf/training/progress.py), followed into the run
    stdout.log, stderr.log, process.json (the process group)
    checkpoint-N/, metrics.json, final/   what the script writes (output_dir is the folder)

then starts `accelerate launch --quiet ...` in a process group of its own, follows its progress
into the TrainingRun (step, total, metric points, log tail, heartbeat), and stops the whole group
when a cancel is asked for (SIGTERM, SIGKILL after RLHF_CANCEL_GRACE_S). Exit 0: the output model
(final/, moved into the model store) is registered as a version, with its lineage and the
figures of metrics.json. Any other exit fails the run with the last lines of the script's stderr.
The worker never loads a model: memory is the script's, and goes with its process.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml
from django.conf import settings

from labeling.models import Prompt
from models_app import services as models_services

from . import config as round_config
from . import datasets, services
from .models import Algorithm, Round, TrainingRun
from .training.common import cores_per_process, last_complete_checkpoint

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = {TrainingRun.Kind.REWARD: "reward", TrainingRun.Kind.SFT: "sft", TrainingRun.Kind.DPO: "dpo",
           TrainingRun.Kind.PPO: "ppo", TrainingRun.Kind.GRPO: "grpo", TrainingRun.Kind.RLOO: "rloo",
           TrainingRun.Kind.EVAL: "evaluate"}
STDERR_LINES = 15  # of a failed script's stderr, in the run's error
POLL_S = 0.2  # how often the progress file is read
CANCEL_CHECK_S = 0.5  # how often the run's cancel flag is read


class RunCancelled(Exception):
    """The run was cancelled (or taken from this worker) while its script ran."""


@dataclass
class Stage:
    """What a run launches: its script, its config (the YAML), and what to do with the output
    once the script exited 0 (`finish(metrics)`, metrics.json's content or {})."""

    script: str
    config: dict
    finish: Callable[[dict], None]
    several_processes: bool = True  # the evaluation runs in one


# --- the run's folder and files ------------------------------------------------------------------


def run_folder(run: TrainingRun) -> Path:
    """The run's folder (kept on retry: the script resumes from its last checkpoint there)."""
    path = Path(run.checkpoint_dir) if run.checkpoint_dir else Path(settings.MODEL_STORE) / "runs" / f"run-{run.pk}"
    path.mkdir(parents=True, exist_ok=True)
    if not run.checkpoint_dir:
        services.record_run_folder(run, str(path))
    return path


def write_jsonl(path: Path, rows) -> Path:
    """Rows as JSON Lines, written whole (tmp, then renamed)."""
    partial = path.with_name(path.name + ".tmp")
    with open(partial, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(partial, path)
    return path


def write_text(path: Path, text: str) -> Path:
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
    return path


def model_dir(version, what: str) -> str:
    """The directory a script starts from: a version with full weights."""
    from models_app.loading import artifact_path

    if version.is_adapter:
        raise services.RoundError(f"{what} {version} is a LoRA adapter; the training scripts start from full "
                                  "weights: register the merged model and deploy it.")
    return str(artifact_path(version))


def discard_checkpoints(run: TrainingRun) -> None:
    """A run that succeeded needs no checkpoint (its model version is saved apart, and a retry
    keeps succeeded runs): delete them, a model's size each, unless RLHF_KEEP_CHECKPOINTS. The
    rest of the folder (data, config, command) stays, to rerun the stage by hand. A failed or
    cancelled run keeps its checkpoints, for the retry to resume from."""
    if getattr(settings, "RLHF_KEEP_CHECKPOINTS", False) or not run.checkpoint_dir:
        return
    for checkpoint in Path(run.checkpoint_dir).glob("checkpoint-*"):
        shutil.rmtree(checkpoint, ignore_errors=True)


def last_checkpoint(path) -> str | None:
    return last_complete_checkpoint(path)


def version_name(run: TrainingRun, suffix: str) -> str:
    round = run.round
    return f"{round.project.slug}-r{round.number}-{suffix}-run{run.pk}"


def register(run: TrainingRun, folder: Path, *, kind: str, suffix: str, parent, metrics: dict):
    """The script's final/ moved into the model store and registered as a version of the
    round's project (not loaded: the script wrote it whole, final.tmp renamed at its very end)."""
    from models_app import services as model_services

    final = folder / "final"
    if not (final / "config.json").is_file():
        raise services.RoundError("The stage script exited without error but wrote no final model.")
    name = version_name(run, suffix)
    path = Path(settings.MODEL_STORE) / ("reward" if kind == "reward" else "policies") / name
    if path.exists():  # a retried run writes its artifact again
        shutil.rmtree(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(final), str(path))
    version = model_services.register_model(
        str(path), kind=kind, name=name, parent=parent, base_model=parent.base_model if parent else "",
        is_adapter=False, user=None, project=run.round.project, metrics=metrics, check=False,
        origin=f"round {run.round.number}, {run}")
    services.record_run_output(run, version)
    return version


def read_metrics(folder: Path) -> dict:
    path = folder / "metrics.json"
    return json.loads(path.read_text()) if path.is_file() else {}


# --- where it runs: devices, processes, the command line ------------------------------------------


def gpu_count() -> int:
    """GPUs of this machine (torch's count; torch is imported, no model is loaded)."""
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:  # noqa: BLE001 - no CUDA at all
        return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Launch:
    """The resolved launcher settings of one run."""

    settings: dict
    gpus: int
    processes: int  # on this machine
    machines: int
    mixed_precision: str

    @property
    def total(self) -> int:
        return self.processes * self.machines

    def as_json(self) -> dict:
        return {"settings": self.settings, "gpus": self.gpus, "num_processes_per_machine": self.processes,
                "num_machines": self.machines, "mixed_precision": self.mixed_precision}


def resolve_launch(round: Round, *, several_processes: bool = True) -> Launch:
    """The project's launcher settings, then the round's, checked again (the config directory may
    have changed since the launch); defaults: one process on a CPU, every GPU of the machine."""
    values = round_config.launcher_settings(round.project.launcher, round.launcher)
    gpus = gpu_count()
    processes = values.get("num_processes") or max(gpus, 1)
    machines = values.get("num_machines", 1)
    if not several_processes:
        processes, machines = 1, 1
    mixed = values.get("mixed_precision") or ("bf16" if gpus else "no")
    return Launch(values, gpus, processes, machines, mixed)


def command_line(script: str, config_path: Path, launch: Launch, *, several_processes: bool = True) -> list[str]:
    """`accelerate launch --quiet ...` of a stage script, every setting given (accelerate's own
    multi-node flags), so accelerate neither guesses nor warns; with a config file (DeepSpeed,
    FSDP) only what the settings set explicitly overrides it."""
    values = launch.settings if several_processes else {}
    config_file = values.get("config_file")
    script_args = [f"rlhf/training/{script}.py", "--config", str(config_path)]
    if (getattr(settings, "RLHF_SINGLE_PROCESS_RUNNER", "accelerate") == "python" and launch.total == 1
            and not config_file and launch.mixed_precision == "no"):
        return [sys.executable, *script_args]  # the same run without accelerate's own start (~7 s of CPU)
    command = [str(Path(sys.executable).with_name("accelerate")), "launch", "--quiet"]
    if not launch.gpus:
        command += ["--num_cpu_threads_per_process", str(cpu_threads_per_process(launch.processes))]
    if config_file:
        command += ["--config_file", str(round_config.resolve_config_file(config_file))]
    elif launch.total > 1:
        command += ["--multi_gpu"]  # on a CPU too: torchrun starts the processes, use_cpu joins them over gloo
    command += ["--num_processes", str(launch.total), "--num_machines", str(launch.machines)]
    if launch.machines > 1:
        command += ["--machine_rank", str(values.get("machine_rank", 0)),
                    "--main_process_ip", values["main_process_ip"]]
    if launch.total > 1:
        command += ["--main_process_port", str(values.get("main_process_port") or free_port())]
    if not config_file or values.get("mixed_precision"):
        command += ["--mixed_precision", launch.mixed_precision]
    if not config_file:
        command += ["--dynamo_backend", "no"]
    return command + script_args


def cpu_threads_per_process(processes: int) -> int:
    """Torch threads of each CPU process: RLHF_TORCH_THREADS, else this worker's cores shared out
    (training.common.cores_per_process says why accelerate must be told)."""
    return getattr(settings, "RLHF_TORCH_THREADS", 0) or cores_per_process(processes)


def child_env() -> dict:
    """What rankloop sets for the script (the rest of the worker's environment passes through)."""
    env = {"TOKENIZERS_PARALLELISM": "false", "TRL_EXPERIMENTAL_SILENCE": "1"}
    if getattr(settings, "RLHF_TORCH_THREADS", 0):
        env["OMP_NUM_THREADS"] = str(settings.RLHF_TORCH_THREADS)
    return env


def shell_line(command: list[str], env: dict) -> str:
    return shlex.join(["env", *(f"{k}={v}" for k, v in env.items()), *command])


# --- the process group -------------------------------------------------------------------------------

_PRCTL = None


def _die_with_worker():
    """In the child, before exec: SIGTERM it when the worker dies (kill -9 included); accelerate
    then stops the processes it started. Linux only."""
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _preexec():
    global _PRCTL
    if not sys.platform.startswith("linux"):
        return None
    if _PRCTL is None:
        import ctypes

        _PRCTL = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork
    return _die_with_worker


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group, from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def stop_group(pgid: int, process: subprocess.Popen | None = None, *, grace_s: float | None = None) -> None:
    """SIGTERM to the whole group, SIGKILL to what is left after the grace period."""
    grace_s = settings.RLHF_CANCEL_GRACE_S if grace_s is None else grace_s
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if process is not None:
            process.poll()
        if not group_members(pgid):
            break
        time.sleep(0.1)
    else:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    if process is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=30)


def stop_leftovers(folder: Path) -> None:
    """An earlier attempt's processes that outlived their worker (on this machine) are stopped
    before a retry writes into the same folder."""
    record = folder / "process.json"
    if not record.is_file():
        return
    with contextlib.suppress(ValueError, OSError, KeyError):
        info = json.loads(record.read_text())
        if info["host"] != socket.gethostname():
            return
        pgid = int(info["pgid"])
        ours = [pid for pid in group_members(pgid) if str(folder) in _cmdline(pid)]
        if ours:
            logger.warning("stopping processes %s left by an earlier attempt in %s", ours, folder)
            stop_group(pgid, grace_s=5)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


# --- following the script ----------------------------------------------------------------------------


class ProgressFollower:
    """Reads the script's progress lines as they are appended, into the run."""

    def __init__(self, path: Path, run_id: int):
        self.path, self.run_id = path, run_id
        self.offset, self.partial = 0, b""
        self.step, self.total, self.errors = 0, 0, []

    def read(self) -> None:
        if not self.path.is_file():
            return
        with open(self.path, "rb") as handle:
            handle.seek(self.offset)
            chunk = handle.read()
        self.offset += len(chunk)
        lines = (self.partial + chunk).split(b"\n")
        self.partial = lines.pop()  # an unfinished last line waits for its end
        for line in lines:
            if line.strip():
                with contextlib.suppress(ValueError):
                    self.handle(json.loads(line))

    def handle(self, line: dict) -> None:
        event, step, total = line.get("event"), line.get("step"), line.get("total")
        if isinstance(step, int):
            self.step = step
        if isinstance(total, int) and total:
            self.total = total
        if event in ("begin", "step", "end"):
            services.record_progress(self.run_id, step=self.step, total=self.total)
        elif event == "log" and isinstance(line.get("metrics"), dict):
            metrics = line["metrics"]
            services.record_metrics(self.run_id, self.step, metrics)
            shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items())
            services.append_log(self.run_id, f"step {self.step}/{self.total}: {shown}\n")
        elif event == "log" and line.get("log"):
            services.append_log(self.run_id, f"{line['log']}\n")
        elif event == "error":
            self.errors.append(str(line.get("log", "")))


def stderr_tail(path: Path, lines: int = STDERR_LINES) -> str:
    if not path.is_file():
        return ""
    text = path.read_bytes()[-64_000:].decode("utf-8", errors="replace")
    kept = [line for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])[-4000:]


def supervise(run: TrainingRun, folder: Path, command: list[str], env: dict) -> int:
    """Run the command in a process group of its own, following its progress into the run;
    stop the group on a cancel (RunCancelled). Returns the exit code."""
    stop_leftovers(folder)
    progress = ProgressFollower(folder / "progress.jsonl", run.pk)
    (folder / "progress.jsonl").unlink(missing_ok=True)  # this attempt's lines only
    with open(folder / "stdout.log", "wb") as stdout, open(folder / "stderr.log", "wb") as stderr:
        process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env}, stdin=subprocess.DEVNULL,
                                   stdout=stdout, stderr=stderr, start_new_session=True, preexec_fn=_preexec())
    write_text(folder / "process.json", json.dumps({"pid": process.pid, "pgid": process.pid,
                                                    "host": socket.gethostname()}))
    beat_every = settings.RLHF_HEARTBEAT_S
    last_check = last_beat = time.monotonic()
    try:
        while True:
            code = process.poll()
            progress.read()
            now = time.monotonic()
            if now - last_check >= CANCEL_CHECK_S:
                last_check = now
                if services.run_should_stop(run.pk):
                    stop_group(process.pid, process)
                    progress.read()
                    raise RunCancelled(f"cancelled at step {progress.step}: the training processes were stopped")
            if now - last_beat >= beat_every:
                last_beat = now
                services.heartbeat(run.pk)
            if code is not None:
                progress.read()
                return code
            time.sleep(POLL_S)
    except BaseException:
        if process.poll() is None:  # the worker itself is stopping: take the script with it
            stop_group(process.pid, process, grace_s=5)
        raise


def launch(run: TrainingRun, stage: Stage, folder: Path) -> None:
    """Write the config, the settings and the command; run it; finish or fail by its exit."""
    launch_settings = resolve_launch(run.round, several_processes=stage.several_processes)
    config = dict(stage.config)
    if stage.several_processes:
        if not launch_settings.gpus:
            config["use_cpu"] = True  # several CPU processes join one gloo group
        config["bf16"] = launch_settings.mixed_precision == "bf16"
        if launch_settings.mixed_precision == "fp16":
            config["fp16"] = True
    config_path = write_text(folder / "config.yaml", yaml.safe_dump(config, sort_keys=True, allow_unicode=True))
    command = command_line(stage.script, config_path, launch_settings, several_processes=stage.several_processes)
    env = child_env()
    line = shell_line(command, env)
    write_text(folder / "launcher.json", json.dumps({**launch_settings.as_json(), "command": command, "env": env},
                                                    indent=2) + "\n")
    write_text(folder / "command.sh", f"#!/bin/sh\n# run {run.pk} ({run.get_kind_display()}), rerun by hand\n"
                                      f"cd {shlex.quote(str(ROOT))} && {line}\n")
    services.record_command(run.pk, line)
    services.append_log(run.pk, f"launch: {launch_settings.total} process(es), {launch_settings.gpus or 'no'} "
                                f"GPU(s), mixed precision {launch_settings.mixed_precision}\n")
    code = supervise(run, folder, command, env)
    if code != 0:
        tail = stderr_tail(folder / "stderr.log")
        how = (f"killed by signal {signal.Signals(-code).name}" if code < 0 and -code in signal.valid_signals()
               else f"exit code {code}")
        raise ScriptFailed(f"The {stage.script} script failed ({how}):\n{tail}" if tail else
                           f"The {stage.script} script failed ({how}) and wrote nothing to stderr.")
    stage.finish(read_metrics(folder))


class ScriptFailed(Exception):
    """A stage script exited non-zero; the message ends with the last lines of its stderr."""


# --- the stages ----------------------------------------------------------------------------------------


def _training_config(run: TrainingRun, stage: str, folder: Path, start_dir: str) -> dict:
    values = run.config
    return {**round_config.trainer_kwargs(stage, values, output_dir=str(folder), seed=values.get("seed", 0)),
            **round_config.model_config(values), "model_name_or_path": start_dir,
            "progress_file": str(folder / "progress.jsonl"), "final_dir": str(folder / "final"), "resume": True}


def plan_reward(run: TrainingRun, folder: Path) -> Stage:
    """Bradley-Terry reward model from the round's starting policy; held-out accuracy (by the
    trainer's own evaluation, at the training max_length) on the version and the round."""
    round = run.round
    datasets.check_enough_data(round.project, round.data_filters)
    train = datasets.preference_rows(round.project, round.data_filters, split=Prompt.Split.TRAIN)
    heldout = datasets.preference_rows(round.project, round.data_filters, split=Prompt.Split.HELDOUT)
    config = _training_config(run, "reward", folder, model_dir(round.policy_in, "The starting policy"))
    config.update(train_file=str(write_jsonl(folder / "train.jsonl", train)),
                  use_margin=bool(run.config.get("use_margin", False)))
    if heldout:
        config["eval_file"] = str(write_jsonl(folder / "heldout.jsonl", heldout))
    services.append_log(run.pk, f"reward model: {len(train)} train pairs, {len(heldout)} held-out\n")

    def finish(metrics):
        accuracy, pairs = metrics.get("eval_accuracy"), metrics.get("eval_pairs", 0)
        version = register(run, folder, kind="reward", suffix="rm", parent=round.policy_in, metrics={
            "heldout_accuracy": accuracy, "pairs_train": len(train), "pairs_heldout": pairs,
            "heldout_correct": metrics.get("eval_correct", 0),
            "heldout_pairs_skipped": metrics.get("eval_pairs_skipped", 0),
            "train_loss": metrics.get("train_loss"), "final_loss": metrics.get("final_loss"),
            "max_length": config.get("max_length"), "world_size": metrics.get("world_size")})
        if accuracy is not None:
            services.record_metrics(run.pk, metrics.get("global_step", 0), {"rm_accuracy_heldout": accuracy})
        services.set_round_outputs(round, reward_model=version)
        services.merge_round_metrics(round, {"rm_accuracy_heldout": accuracy, "pairs_train": len(train),
                                             "pairs_heldout": pairs})
        if round.project.queue_order == round.project.QueueOrder.UNCERTAINTY:
            services.queue_uncertainty_scoring(round.project)  # the new reward model re-orders the queue

    return Stage("reward", config, finish)


def plan_sft(run: TrainingRun, folder: Path) -> Stage | None:
    """Supervised fine-tuning on annotators' ideal answers, before the policy stage."""
    round = run.round
    rows = datasets.demonstrations(round.project)
    if not rows:
        services.append_log(run.pk, "no ideal answers written by annotators: SFT skipped\n")
        return None
    config = _training_config(run, "sft", folder, model_dir(round.policy_in, "The starting policy"))
    config["train_file"] = str(write_jsonl(folder / "train.jsonl", rows))

    def finish(metrics):
        version = register(run, folder, kind="policy", suffix="sft", parent=round.policy_in,
                           metrics={"demonstrations": len(rows), "steps": metrics.get("global_step"),
                                    "train_loss": metrics.get("train_loss")})
        services.set_round_outputs(round, policy_out=version)

    return Stage("sft", config, finish)


def plan_policy(run: TrainingRun, folder: Path) -> Stage:
    """Optimize the policy with the round's algorithm; the result is the round's policy_out."""
    round, kind = run.round, run.kind
    start = round.policy_out or round.policy_in  # after SFT, from its output
    if round.reward_model is None:
        raise services.RoundError("The round has no reward model; its reward stage did not finish.")
    config = _training_config(run, kind, folder, model_dir(start, "The starting policy"))
    if kind == TrainingRun.Kind.DPO:
        rows = datasets.preference_rows(round.project, round.data_filters, split=Prompt.Split.TRAIN)
        what = f"{len(rows)} pairs"
    else:
        prompts = datasets.policy_prompts(round.project, limit=run.config.get("max_prompts"))
        if not prompts:
            raise services.RoundError("The project has no training prompts to optimize the policy on.")
        rows, what = [{"prompt": p} for p in prompts], f"{len(prompts)} prompts"
        config["reward_model_path"] = model_dir(round.reward_model, "The reward model")
        if kind == TrainingRun.Kind.PPO:
            config["max_prompt_length"] = int(run.config.get("max_prompt_length", 256))
        elif round_config.launcher_settings(round.project.launcher, round.launcher).get("use_vllm") and gpu_count():
            config.update(use_vllm=True, vllm_mode="colocate")  # rollouts by vLLM on the training GPUs
    config["train_file"] = str(write_jsonl(folder / "train.jsonl", rows))
    services.append_log(run.pk, f"{kind}: {what}, starting from {start}\n")

    def finish(metrics):
        version = register(run, folder, kind="policy", suffix=kind, parent=start, metrics={
            "algorithm": kind, "steps": metrics.get("global_step"), "train_loss": metrics.get("train_loss"),
            "final_loss": metrics.get("final_loss"), "world_size": metrics.get("world_size")})
        services.set_round_outputs(round, policy_out=version)

    return Stage(SCRIPTS[kind], config, finish)


def judge_for(round: Round):
    """The project's judge when it has one, else the previous round's reward model, else None."""
    judge = models_services.judge_of(round.project)
    if judge is not None:
        return judge
    earlier = (Round.objects.filter(project_id=round.project_id, number__lt=round.number, reward_model__isnull=False)
               .exclude(reward_model_id=round.reward_model_id).select_related("reward_model").order_by("-number")
               .first())
    return earlier.reward_model if earlier else None


def plan_evaluation(run: TrainingRun, folder: Path) -> Stage:
    """rlhf/training/evaluate.py: the new policy against the old on the held-out prompts (up to
    the cap), several samples each, scored by the round's reward model and by a judge; the
    reward model's accuracy on the held-out pairs at the length it trained with."""
    round, values = run.round, {**round_config.DEFAULTS["eval"], **run.config}
    old, new, reward_model = round.policy_in, round.policy_out, round.reward_model
    if new is None or reward_model is None:
        raise services.RoundError("Nothing to evaluate: the round has no new policy or no reward model.")
    split = Prompt.Split.HELDOUT
    prompts = datasets.policy_prompts(round.project, split=split, limit=values["prompts"])
    if not prompts:
        split = Prompt.Split.TRAIN
        prompts = datasets.policy_prompts(round.project, split=split, limit=values["prompts"])
        services.append_log(run.pk, "no held-out prompts: evaluating on training prompts\n")
    if not prompts:
        raise services.RoundError("The project has no prompts to evaluate the policies on.")
    pairs = datasets.preference_rows(round.project, round.data_filters, split=Prompt.Split.HELDOUT)
    pairs = pairs[: values["max_pairs"]]
    reward_run = round.runs.filter(kind=TrainingRun.Kind.REWARD).order_by("-id").first()
    max_length = (reward_run.config if reward_run else {}).get("max_length") or reward_model.metrics.get("max_length")
    judge = judge_for(round)
    config = {"old_policy_path": model_dir(old, "The old policy"), "new_policy_path": model_dir(new, "The new policy"),
              "reward_model_path": model_dir(reward_model, "The reward model"),
              "prompts_file": str(write_jsonl(folder / "prompts.jsonl", [{"prompt": p} for p in prompts])),
              "output_file": str(folder / "evaluation.json"), "progress_file": str(folder / "progress.jsonl"),
              "samples_per_prompt": values["samples_per_prompt"], "max_new_tokens": values["max_new_tokens"],
              "temperature": values["temperature"], "seed": values.get("seed", 0), "max_length": max_length}
    if pairs:
        config["pairs_file"] = str(write_jsonl(folder / "pairs.jsonl", pairs))
    if judge is not None:
        config["judge_model_path"] = model_dir(judge, "The judge")
    services.append_log(run.pk, f"evaluation: {len(prompts)} {split} prompts x {values['samples_per_prompt']} "
                                f"samples, {len(pairs)} held-out pairs, judge {judge or 'none'}\n")

    def finish(_metrics):
        result = json.loads((folder / "evaluation.json").read_text())
        figures = dict(result["figures"])
        services.record_metrics(run.pk, run_total(run), figures)
        services.append_log(run.pk, "evaluation: " + ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={services.shown_metric(v)}"
            for k, v in figures.items()) + "\n")
        services.merge_round_metrics(round, {
            **figures, "mean_reward_new": result["reward_new"]["mean"], "mean_reward_old": result["reward_old"]["mean"],
            "eval_split": split, "judge_model": str(judge) if judge else None, "evaluation": result})
        services.finish_evaluation(round)  # evaluated, then the deploy rule, before the run reads as done

    return Stage("evaluate", config, finish, several_processes=False)


def run_total(run: TrainingRun) -> int:
    return TrainingRun.objects.filter(pk=run.pk).values_list("total_steps", flat=True).first() or 0


PLANS = {TrainingRun.Kind.REWARD: plan_reward, TrainingRun.Kind.SFT: plan_sft, TrainingRun.Kind.EVAL: plan_evaluation,
         **dict.fromkeys(Algorithm.values, plan_policy)}


def execute(run: TrainingRun, *, celery_id: str = "") -> str:
    """Run one stage of a round, start to finish, recording how it ended. Returns the status."""
    if not services.start_run(run, celery_id=celery_id):
        return "skipped"
    run = TrainingRun.objects.select_related(
        "round__project", "round__policy_in", "round__policy_out", "round__reward_model").get(pk=run.pk)
    try:
        if run.kind == TrainingRun.Kind.EVAL and run.round.state == Round.State.TRAINING:
            services.transition(run.round, Round.State.EVALUATING, note="training done")
        folder = run_folder(run)
        stage = PLANS[run.kind](run, folder)
        if stage is not None:
            launch(run, stage, folder)
    except RunCancelled as exc:
        services.append_log(run.pk, f"{exc}\n")
        services.finish_run(run, TrainingRun.Status.CANCELLED)
        return TrainingRun.Status.CANCELLED
    except Exception as exc:  # every failure ends the run with its reason, for the round page
        if not isinstance(exc, (ScriptFailed, services.RoundError)):
            logger.exception("%s failed", run)
        message = str(exc) or exc.__class__.__name__
        services.append_log(run.pk, f"FAILED: {message}\n")
        services.finish_run(run, TrainingRun.Status.FAILED, error=message)
        return TrainingRun.Status.FAILED
    services.finish_run(run, TrainingRun.Status.SUCCEEDED)
    run.refresh_from_db(fields=["checkpoint_dir"])
    discard_checkpoints(run)
    return TrainingRun.Status.SUCCEEDED
