"""Overhead of training through rankloop: the same reward-model training (same data, model, seed
and hyper-parameters) as a round's reward stage (dataset from the database, progress, metrics,
heartbeat and log written per step, version registered, held-out accuracy) and as a bare TRL
script (rows from a JSONL file, RewardTrainer, save, held-out accuracy). Each side runs in a
fresh Python process; the clock starts after the imports. Target: ratio <= 1.10.

    .venv/bin/python bench/train_overhead.py                     # small random Llama, 150 steps
    .venv/bin/python bench/train_overhead.py --model default --steps 6
Last line: {"platform_s", "bare_trl_s", "ratio", ...}.
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support.rlhf import SHARED_DATA, bench_env, link_default_model, read_rows, seeded_round  # noqa: E402
from support.server import ROOT, setup_django  # noqa: E402


def reward_settings(options) -> dict:
    return {"max_steps": options.steps, "per_device_train_batch_size": options.batch_size, "learning_rate": 1e-4,
            "max_length": options.max_length, "lora": options.lora, "save_strategy": "no"}


def prepare(options, workdir: Path) -> dict:
    """Seed the database, plan the round, and write the same rows and arguments for the bare script."""
    env = bench_env(options.db, workdir / "models")
    (workdir / "models").mkdir(parents=True)
    setup_django(env)
    link_default_model(workdir / "models")
    from labeling.models import Prompt
    from models_app.loading import artifact_path
    from rlhf import config, datasets

    if options.model == "small":
        from django.conf import settings

        from models_app import services as models
        from models_app.tiny import build_tiny_model

        path = build_tiny_model(Path(settings.MODEL_STORE) / "bench-small", layers=4, hidden=256)
        policy = models.register_model(path, kind="policy", name="bench-small")
        model = "given"
    else:
        policy, model = None, options.model
    rows = read_rows(options.data, options.pairs) if options.data.exists() else synthetic_rows(options.pairs)
    round, run, _ = seeded_round(rows, model=model, reward=reward_settings(options), heldout_percent=15,
                                 policy=policy)
    train = datasets.preference_rows(round.project, round.data_filters, split=Prompt.Split.TRAIN)
    heldout = datasets.preference_rows(round.project, round.data_filters, split=Prompt.Split.HELDOUT)
    with open(workdir / "train.jsonl", "w") as handle:
        handle.writelines(json.dumps({k: r[k] for k in ("prompt", "chosen", "rejected")}) + "\n" for r in train)
    with open(workdir / "heldout.jsonl", "w") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in heldout)
    args = config.trainer_kwargs("reward", run.config, output_dir="", seed=run.config.get("seed", 0))
    return {"env": env, "run_id": run.pk, "policy_dir": str(artifact_path(round.policy_in)), "args": args,
            "lora": options.lora, "pairs_train": len(train), "pairs_heldout": len(heldout)}


def synthetic_rows(n):
    return [{"id": f"syn-{i}", "prompt": [{"role": "user", "content": f"Question {i} about python code?"}],
             "chosen": f"Here is a helpful answer with an example {i}.", "rejected": f"Sorry, I cannot help {i}."}
            for i in range(n)]


def platform_side(plan):
    """The round's reward stage, as a worker runs it."""
    setup_django(plan["env"])
    import datasets  # noqa: F401  (a worker has these loaded after its first task; the bare side
    import peft  # noqa: F401       imports them before its clock starts too)
    import trl  # noqa: F401

    from rlhf import trainers
    from rlhf.models import TrainingRun

    run = TrainingRun.objects.get(pk=plan["run_id"])
    began = time.perf_counter()
    status = trainers.execute(run)
    elapsed = time.perf_counter() - began
    run.refresh_from_db()
    if status != "succeeded":
        raise SystemExit(f"platform run {status}: {run.error}")
    return {"seconds": elapsed, "steps": run.step, "accuracy": run.round.reward_model.metrics["heldout_accuracy"]}


def bare_side(plan, workdir: Path):
    """What a person would write with TRL alone, on the same rows and arguments."""
    import torch
    from datasets import load_dataset
    from peft import LoraConfig
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, set_seed
    from trl import RewardConfig, RewardTrainer

    if plan["env"].get("RLHF_TORCH_THREADS"):
        torch.set_num_threads(int(plan["env"]["RLHF_TORCH_THREADS"]))
    began = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(plan["policy_dir"])
    set_seed(plan["args"]["seed"])
    model = AutoModelForSequenceClassification.from_pretrained(plan["policy_dir"], num_labels=1)
    if not torch.cuda.is_available():
        model = model.float()
    model.config.pad_token_id = tokenizer.pad_token_id
    train = load_dataset("json", data_files=str(workdir / "train.jsonl"), split="train")
    args = RewardConfig(output_dir=str(workdir / "bare-out"), **{k: v for k, v in plan["args"].items()
                                                                   if k != "output_dir"})
    peft = LoraConfig(task_type="SEQ_CLS", r=8, lora_alpha=16, target_modules="all-linear") if plan["lora"] else None
    trainer = RewardTrainer(model=model, args=args, train_dataset=train, processing_class=tokenizer, peft_config=peft)
    trainer.train()
    model = trainer.model.merge_and_unload() if peft else trainer.model
    model.save_pretrained(workdir / "bare-model")
    tokenizer.save_pretrained(workdir / "bare-model")
    correct = total = 0
    model.eval()
    with open(workdir / "heldout.jsonl") as handle, torch.inference_mode():
        for line in handle:
            row = json.loads(line)
            scores = []
            for side in ("chosen", "rejected"):
                text = tokenizer.apply_chat_template(row["prompt"] + row[side], tokenize=False)
                ids = tokenizer(text, return_tensors="pt", add_special_tokens=False, truncation=True, max_length=1024)
                scores.append(model(**ids).logits[0, 0].item())
            correct += scores[0] > scores[1]
            total += 1
    return {"seconds": time.perf_counter() - began, "steps": trainer.state.global_step,
            "accuracy": correct / total if total else None}


def side_in_fresh_process(side, workdir):
    out = subprocess.run([sys.executable, __file__, "--side", side, "--workdir", str(workdir)], cwd=ROOT,
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{side} side failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


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
    parser.add_argument("--side", choices=["platform", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    options = parser.parse_args()

    if options.side:
        plan = json.loads((options.workdir / "plan.json").read_text())
        result = platform_side(plan) if options.side == "platform" else bare_side(plan, options.workdir)
        print(json.dumps(result))
        return
    workdir = Path(tempfile.mkdtemp(prefix="rankloop-overhead-"))
    plan = prepare(options, workdir)
    plan["env"]["RLHF_TORCH_THREADS"] = str(options.threads)
    (workdir / "plan.json").write_text(json.dumps(plan))
    print(f"{options.model} model, {plan['pairs_train']} train / {plan['pairs_heldout']} held-out pairs, "
          f"{options.steps} steps of {options.batch_size}", flush=True)
    # Alternate the sides and keep each one's best time: the machine is shared, and the best
    # time is the one least disturbed by other work.
    times = {"bare": [], "platform": []}
    for attempt in range(options.repeat):
        for side in (("bare", "platform") if attempt % 2 == 0 else ("platform", "bare")):
            if side == "platform":
                next_reward_run(plan)
                (workdir / "plan.json").write_text(json.dumps(plan))
            result = side_in_fresh_process(side, workdir)
            times[side].append(result["seconds"])
            print(f"{'bare TRL script' if side == 'bare' else 'rankloop round':16s} {result['seconds']:7.2f} s "
                  f"({result['steps']} steps, held-out accuracy {result['accuracy']:.3f})", flush=True)
    platform_s, bare_s = min(times["platform"]), min(times["bare"])
    ratio = platform_s / bare_s
    print(f"best of {options.repeat}: rankloop {platform_s:.2f} s, bare TRL {bare_s:.2f} s, "
          f"ratio {ratio:.3f} (target <= 1.10)")
    print(json.dumps({"platform_s": round(platform_s, 3), "bare_trl_s": round(bare_s, 3), "ratio": round(ratio, 4),
                      "model": options.model, "steps": options.steps, "pairs_train": plan["pairs_train"],
                      "repeat": options.repeat}))


def next_reward_run(plan) -> int:
    """A fresh round with the same settings (the previous one cancelled), through the services."""
    from rlhf import services
    from rlhf.models import TrainingRun

    previous = TrainingRun.objects.select_related("round").get(pk=plan["run_id"]).round
    if previous.runs.filter(status=TrainingRun.Status.SUCCEEDED).exists():
        services.cancel_round(previous, user=None)
        round = services.launch_round(previous.project, user=None, algorithm=previous.algorithm,
                                      hyperparameters=previous.hyperparameters, data_filters=previous.data_filters,
                                      enqueue=False)
        plan["run_id"] = round.runs.get(kind="reward").pk
    return plan["run_id"]


if __name__ == "__main__":
    main()
