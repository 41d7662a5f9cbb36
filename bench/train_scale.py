"""Data-parallel scaling of the stage scripts under accelerate launch.

CPU (default): the reward stage (rlhf/training/reward.py, the reward defaults of
rlhf/training/defaults.py) on the same HH pairs and seed with 1 process x batch B and with 2
processes x batch B/2 (the same global batches; --multi_gpu + use_cpu: gloo, as
rlhf/training/__init__.py documents), the CPU's cores split between the processes (OMP threads
cores / processes). Prints tokens/s (the training pairs' tokens, both answers, over the trainer's
train_runtime), the speed-up and both final losses. On a CPU shared with other jobs the speed-up
reads whatever else ran during each half (a first run measured 2.95x on 2 cores, which only says
the one-process half was starved); the loss comparison does not depend on the load.

    .venv/bin/python bench/train_scale.py                  # default model, 48 pairs, max_length 128
    .venv/bin/python bench/train_scale.py --device cuda    # default model, 2,000 pairs, max_length 512:
                                                           # reward, DPO and PPO steps on every GPU

Last line (CPU): {"speedup_2_processes", "loss_rel_diff", "tokens_per_s_1", "tokens_per_s_2", ...};
(cuda): {"stages": {"reward"|"dpo"|"ppo": {"tokens_per_s", "step_s", "peak_gpu_mib", ...}}, ...}.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support import stages  # noqa: E402

from rlhf.training import defaults  # noqa: E402


class GpuMemory:
    """Peak memory used on the GPUs while a stage runs, polled from nvidia-smi (the scripts run in
    their own processes)."""

    def __init__(self):
        self.peak, self._stop = 0, threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self):
        while not self._stop.is_set():
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                                     capture_output=True, text=True, timeout=10).stdout
                self.peak = max([self.peak] + [int(v) for v in out.split() if v.strip().isdigit()])
            except (OSError, subprocess.SubprocessError):
                return
            self._stop.wait(0.5)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def cpu(options, work: Path):
    model = options.model or stages.default_model_dir()
    max_length = options.max_length or 128
    wanted = options.pairs or 48
    rows = stages.fits(stages.hh_pairs(options.data)[:8 * wanted], model, max_length)[:wanted]
    train = stages.write_jsonl(work / "train.jsonl", rows)
    tokens = stages.prompt_tokens(rows, model)
    cores = options.cores or os.cpu_count()
    batch = options.batch_size or 4
    runs = {}
    for processes in (1, 2):
        config = {**defaults.REWARD, **stages.CPU, "model_name_or_path": str(model), "train_file": str(train),
                  "max_length": max_length, "per_device_train_batch_size": batch // processes, "use_cpu": True,
                  "num_train_epochs": 1, "logging_steps": 1}
        run = stages.launch("reward", config, work / f"reward-{processes}p", processes=processes,
                            threads=max(1, cores // processes))
        m = run["metrics"]
        runs[processes] = {"tokens_per_s": tokens / m["train_runtime"], "train_runtime_s": m["train_runtime"],
                           "wall_s": run["seconds"], "final_loss": m["final_loss"], "steps": m["global_step"],
                           "world_size": m["world_size"]}
        print(f"{processes} process(es) x batch {batch // processes} ({max(1, cores // processes)} threads each): "
              f"{m['global_step']} steps, {runs[processes]['tokens_per_s']:.0f} tokens/s, "
              f"train {m['train_runtime']:.1f} s "
              f"(wall {run['seconds']:.1f} s), final loss {m['final_loss']:.6f}", flush=True)
    one, two = runs[1], runs[2]
    speedup = two["tokens_per_s"] / one["tokens_per_s"]
    rel = abs(two["final_loss"] - one["final_loss"]) / abs(one["final_loss"])
    print(f"speed-up with 2 processes {speedup:.2f}x; final losses {one['final_loss']:.6f} / {two['final_loss']:.6f} "
          f"(relative difference {rel:.2e}); {len(rows)} pairs, {tokens} tokens, {cores} cores")
    return {"speedup_2_processes": round(speedup, 3), "loss_rel_diff": float(f"{rel:.3g}"),
            "tokens_per_s_1": round(one["tokens_per_s"], 1), "tokens_per_s_2": round(two["tokens_per_s"], 1),
            "final_loss_1": one["final_loss"], "final_loss_2": two["final_loss"], "steps": one["steps"],
            "pairs": len(rows), "tokens": tokens, "max_length": max_length, "cores": cores, "device": "cpu"}


def cuda(options, work: Path):
    import torch

    gpus = torch.cuda.device_count()
    if not gpus:
        sys.exit("--device cuda: no GPU")
    model = options.model or stages.default_model_dir()
    max_length = options.max_length or 512
    rows = stages.fits(stages.hh_pairs(options.data), model, max_length)[:options.pairs or 2000]
    pairs = stages.write_jsonl(work / "pairs.jsonl", rows)
    prompts = stages.write_jsonl(work / "prompts.jsonl", [{"prompt": r["prompt"]} for r in rows])
    tokens = stages.prompt_tokens(rows, model)
    gpu = {"bf16": True, "dataloader_pin_memory": True, "logging_steps": 5}
    batch = options.batch_size or 8
    steps = options.steps or 60
    reward = {**defaults.REWARD_GPU, **stages.CPU, **gpu, "model_name_or_path": str(model), "train_file": str(pairs),
              "max_length": max_length, "per_device_train_batch_size": batch, "max_steps": steps}
    results = {}
    with GpuMemory() as memory:
        run = stages.launch("reward", reward, work / "reward", processes=gpus)
    results["reward"] = run, memory.peak, min(steps * batch * gpus, len(rows)) / len(rows) * tokens
    dpo = {**defaults.DPO_GPU, **stages.CPU, **gpu, "model_name_or_path": str(model), "train_file": str(pairs),
           "max_length": max_length, "per_device_train_batch_size": batch, "max_steps": steps}
    with GpuMemory() as memory:
        run = stages.launch("dpo", dpo, work / "dpo", processes=gpus)
    results["dpo"] = run, memory.peak, min(steps * batch * gpus, len(rows)) / len(rows) * tokens
    episodes = steps * batch * gpus
    ppo = {**defaults.PPO, **stages.CPU, **gpu, "model_name_or_path": str(model),
           "reward_model_path": str(results["reward"][0]["final"]), "train_file": str(prompts),
           "total_episodes": episodes, "per_device_train_batch_size": batch,
           "local_rollout_forward_batch_size": batch}
    with GpuMemory() as memory:
        run = stages.launch("ppo", ppo, work / "ppo", processes=gpus)
    results["ppo"] = run, memory.peak, None
    out = {}
    for name, (run, peak, stage_tokens) in results.items():
        m = run["metrics"]
        runtime = m.get("train_runtime") or run["seconds"]
        out[name] = {"steps": m["global_step"], "step_s": round(runtime / max(1, m["global_step"]), 4),
                     "tokens_per_s": round(stage_tokens / runtime, 1) if stage_tokens else None,
                     "train_runtime_s": round(runtime, 1), "wall_s": round(run["seconds"], 1), "peak_gpu_mib": peak,
                     "final_loss": m.get("final_loss")}
        print(f"{name}: {out[name]}", flush=True)
    return {"stages": out, "gpus": gpus, "gpu": torch.cuda.get_device_name(0), "pairs": len(rows),
            "max_length": max_length, "device": "cuda"}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--data", type=Path, default=stages.HH_PAIRS)
    parser.add_argument("--pairs", type=int, default=None)
    parser.add_argument("--max-length", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None, help="Global batch (CPU) / per device (cuda).")
    parser.add_argument("--steps", type=int, default=None, help="cuda: steps per stage (default 60).")
    parser.add_argument("--cores", type=int, default=None, help="CPU: cores to split between the processes.")
    parser.add_argument("--model", type=Path, default=None, help="Another model directory (e.g. a tiny one).")
    parser.add_argument("--workdir", type=Path, default=None)
    options = parser.parse_args()
    if not options.data.exists():
        sys.exit(f"{options.data} is missing (the shared data folder; set RANKLOOP_SHARED_DATA).")
    work = options.workdir or Path(tempfile.mkdtemp(prefix="rankloop-train-scale-"))
    began = time.perf_counter()
    result = cuda(options, work) if options.device == "cuda" else cpu(options, work)
    result["total_minutes"] = round((time.perf_counter() - began) / 60, 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
