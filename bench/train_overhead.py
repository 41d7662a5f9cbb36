"""Overhead of training through rankloop: a round's reward stage as the platform runs it (the real
launcher, rlhf/launcher.py, without Celery: the dataset snapshot and config written from the
database, `accelerate launch` of rlhf/training/reward.py in its own process group, its progress
followed into the run — steps, metric points, log, heartbeat —, the version registered) against
the bare `accelerate launch` of the same script on the same data files and config, as a user
would type it. Both sides include the launch (interpreter, torch and TRL imports, model load);
the clock runs from before the launch to the registered version (platform) or the exit (bare).
Target: ratio <= 1.05.

    .venv/bin/python bench/train_overhead.py                     # small random Llama, 150 steps
    .venv/bin/python bench/train_overhead.py --model default --steps 6
Last line: {"platform_s", "bare_s", ..., "ratio"}.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support.rlhf import SHARED_DATA, bench_env, link_default_model, read_rows, seeded_round  # noqa: E402
from support.server import ROOT, setup_django  # noqa: E402


def reward_settings(options) -> dict:
    return {"max_steps": options.steps, "per_device_train_batch_size": options.batch_size, "learning_rate": 1e-4,
            "max_length": options.max_length, "lora": options.lora, "save_strategy": "no"}


def synthetic_rows(n):
    return [{"id": f"syn-{i}", "prompt": [{"role": "user", "content": f"Question {i} about python code?"}],
             "chosen": f"Here is a helpful answer with an example {i}.", "rejected": f"Sorry, I cannot help {i}."}
            for i in range(n)]


def prepare(options, workdir: Path):
    """Seed the database and plan the round whose reward stage the platform side runs."""
    env = bench_env(options.db, workdir / "models")
    env["RLHF_TORCH_THREADS"] = str(options.threads)
    (workdir / "models").mkdir(parents=True)
    setup_django(env)
    link_default_model(workdir / "models")
    if options.model == "small":
        from django.conf import settings

        from models_app import services as models
        from models_app.tiny import build_tiny_model

        path = build_tiny_model(Path(settings.MODEL_STORE) / "bench-small", layers=4, hidden=256)
        policy, model = models.register_model(path, kind="policy", name="bench-small"), "given"
    else:
        policy, model = None, options.model
    rows = read_rows(options.data, options.pairs) if options.data.exists() else synthetic_rows(options.pairs)
    round, run, _ = seeded_round(rows, model=model, reward=reward_settings(options), heldout_percent=15,
                                 policy=policy)
    return env, run


def platform_side(run):
    """The round's reward stage through the launcher, as a worker's task runs it."""
    from rlhf import launcher

    began = time.perf_counter()
    status = launcher.execute(run)
    elapsed = time.perf_counter() - began
    run.refresh_from_db()
    if status != "succeeded":
        raise SystemExit(f"platform run {status}: {run.error}")
    version = run.output
    return {"seconds": elapsed, "steps": run.step, "accuracy": version.metrics["heldout_accuracy"],
            "folder": run.checkpoint_dir}


def bare_config(platform_folder: Path, workdir: Path) -> Path:
    """The platform's config and data files, written to a folder of the bare side's own."""
    config = yaml.safe_load((platform_folder / "config.yaml").read_text())
    out = workdir / "bare-out"
    config.update(output_dir=str(out), final_dir=str(out / "final"), progress_file=str(out / "progress.jsonl"))
    path = workdir / "bare-config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def bare_side(config_path: Path, workdir: Path, env: dict, command: list[str]):
    """`accelerate launch` of the reward script by hand, on the same files and settings."""
    out = workdir / "bare-out"
    subprocess.run(["rm", "-rf", str(out)], check=True)
    out.mkdir()
    began = time.perf_counter()
    done = subprocess.run(command[:command.index("--config") + 1] + [str(config_path)], cwd=ROOT,
                          env={**os.environ, **env}, capture_output=True, text=True)
    elapsed = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"bare side failed:\n{done.stderr[-3000:]}")
    metrics = json.loads((out / "metrics.json").read_text())
    return {"seconds": elapsed, "steps": metrics["global_step"], "accuracy": metrics["eval_accuracy"]}


def next_reward_run(run):
    """A fresh round with the same settings (the previous one cancelled), through the services."""
    from rlhf import services

    previous = run.round
    previous.refresh_from_db()
    if previous.state != "cancelled":
        services.cancel_round(previous, user=None)
    round = services.launch_round(previous.project, user=None, algorithm=previous.algorithm,
                                  hyperparameters=previous.hyperparameters, data_filters=previous.data_filters,
                                  enqueue=False)
    return round.runs.select_related("round").get(kind="reward")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=["small", "tiny", "default"], default="small",
                        help="small: random 4-layer Llama (hidden 256); tiny: the test model; default: SmolLM2-135M.")
    parser.add_argument("--data", type=Path, default=SHARED_DATA / "hh_rlhf_pairs.jsonl.gz")
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--lora", action="store_true")
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, both sides (steadier when shared).")
    parser.add_argument("--repeat", type=int, default=3, help="Runs of each side, alternating; the best counts.")
    options = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="rankloop-overhead-"))
    env, run = prepare(options, workdir)
    from rlhf import launcher

    print(f"{options.model} model, {options.steps} steps of {options.batch_size}, {options.threads} thread(s)",
          flush=True)
    # Alternate the sides (platform first: it writes the files the bare side reuses) and keep
    # each one's best time: the machine is shared, and the best is the least disturbed.
    times = {"bare": [], "platform": []}
    config_path = command = None
    order = [side for attempt in range(options.repeat)
             for side in (("platform", "bare") if attempt % 2 == 0 else ("bare", "platform"))]
    for side in order:
        if side == "platform":
            if times["platform"]:
                run = next_reward_run(run)
            result = platform_side(run)
            if config_path is None:
                folder = Path(result["folder"])
                config_path = bare_config(folder, workdir)
                command = json.loads((folder / "launcher.json").read_text())["command"]
                print(f"{sum(1 for _ in open(folder / 'train.jsonl'))} train pairs; command: "
                      f"{launcher.shell_line(command, launcher.child_env())}", flush=True)
        else:
            result = bare_side(config_path, workdir, launcher.child_env(), command)
        times[side].append(result["seconds"])
        print(f"{'bare accelerate launch' if side == 'bare' else 'rankloop reward stage':22s} "
              f"{result['seconds']:7.2f} s ({result['steps']} steps, held-out accuracy {result['accuracy']})",
              flush=True)
    platform_s, bare_s = min(times["platform"]), min(times["bare"])
    ratio = platform_s / bare_s
    print(f"best of {options.repeat}: rankloop {platform_s:.2f} s, bare {bare_s:.2f} s, ratio {ratio:.3f} "
          "(target <= 1.05)")
    print(json.dumps({"platform_s": round(platform_s, 3), "bare_s": round(bare_s, 3), "model": options.model,
                      "steps": options.steps, "repeat": options.repeat,
                      "platform_all_s": [round(t, 2) for t in times["platform"]],
                      "bare_all_s": [round(t, 2) for t in times["bare"]], "ratio": round(ratio, 4)}))


if __name__ == "__main__":
    main()
