"""Where to spend labels: a reward model trained on N pairs chosen by uncertainty from a pool, against
N chosen at random, on the shared HH-RLHF pairs; held-out accuracy of both (by prompt, never
trained on), each with its 95% Wilson interval.

A seed reward model trains on a few pairs; it scores the pool (rlhf/training/score.py, what the
platform's uncertainty queue order runs); the N pool pairs it is least sure of (smallest margin
between the two answers) and N random ones are each added to the seed pairs, and a reward model
trains on each set (rlhf/training/reward.py, the same settings). All through the stage scripts
under `accelerate launch`, as the platform runs them.

    .venv/bin/python bench/active_selection.py                 # default model, CPU-sized
    .venv/bin/python bench/active_selection.py --model tiny    # smoke run
    .venv/bin/python bench/active_selection.py --device cuda --pool 6000 --n 1000 --heldout 500
Last line: {"uncertainty_heldout_accuracy", "random_heldout_accuracy", ..., "pairs_per_model", "heldout_pairs"}.
"""
import argparse
import gzip
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("RANKLOOP_SHARED_DATA", ROOT.parent / "shared" / "data"))


def read_pairs(path, limit):
    """The file's pairs in TRL's conversational form (its answers are strings beside a list prompt)."""
    def conversational(row):
        def answer(a):
            return a if isinstance(a, list) else [{"role": "assistant", "content": a}]

        return {"prompt": row["prompt"], "chosen": answer(row["chosen"]), "rejected": answer(row["rejected"])}

    with gzip.open(path, "rt", encoding="utf-8") as lines:
        rows = [conversational(json.loads(line)) for line in lines if line.strip()]
    return rows[:limit] if limit else rows


def split_by_prompt(rows, heldout, seed):
    """(train rows, held-out rows): whole prompts go to the held-out side until it has `heldout` pairs."""
    by_prompt = {}
    for row in rows:
        by_prompt.setdefault(json.dumps(row["prompt"], sort_keys=True), []).append(row)
    prompts = sorted(by_prompt)
    random.Random(seed).shuffle(prompts)
    held, train = [], []
    for key in prompts:
        (held if len(held) < heldout else train).extend(by_prompt[key])
    return train, held


def fitting(rows, model_dir, max_length):
    """Only pairs whose both conversations fit max_length (as the reward trainer would keep them), so
    every selection trains on as many pairs as it chose."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)

    def length(row, side):
        return len(tokenizer.apply_chat_template(row["prompt"] + row[side], tokenize=True, return_dict=True)
                   ["input_ids"])

    return [row for row in rows if max(length(row, "chosen"), length(row, "rejected")) <= max_length]


def text(answer):
    return answer if isinstance(answer, str) else "".join(m.get("content", "") for m in answer)


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def default_model_dir(store: Path) -> Path:
    from models_app.default_model import DEFAULT_MODEL_DIR, bundled_gguf_path, convert_gguf, is_converted

    for candidate in (ROOT / "var" / "models" / DEFAULT_MODEL_DIR, store / DEFAULT_MODEL_DIR):
        if is_converted(candidate):
            return candidate
    return convert_gguf(bundled_gguf_path(), store / DEFAULT_MODEL_DIR)


def launch(script, config: dict, folder: Path, log):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "accelerate.commands.launch", "--quiet", "--num_processes", "1",
               str(ROOT / "rlhf" / "training" / script), "--config", str(folder / "config.yaml")]
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if done.returncode:
        sys.exit(f"{script} failed:\n" + "\n".join(done.stderr.strip().splitlines()[-15:]))
    log(f"{script} in {folder.name}: {time.perf_counter() - began:.0f} s")


def train_reward(model_dir, train_file, eval_file, folder, args, log):
    config = {"model_name_or_path": str(model_dir), "train_file": train_file, "eval_file": eval_file,
              "output_dir": str(folder), "num_train_epochs": args.epochs, "learning_rate": args.lr,
              "per_device_train_batch_size": args.batch_size, "per_device_eval_batch_size": args.batch_size,
              "max_length": args.max_length, "seed": args.seed, "save_strategy": "no", "logging_steps": 10,
              "report_to": "none", "bf16": False, "activation_checkpointing": False,
              "dataloader_pin_memory": False, "disable_tqdm": True, "resume": False}
    if args.device == "cpu":
        config["use_cpu"] = True
    if args.lora_r:
        config.update(use_peft=True, lora_r=args.lora_r, lora_alpha=2 * args.lora_r, lora_dropout=0.0,
                      lora_target_modules=["all-linear"])
    launch("reward.py", config, folder, log)
    return json.loads((folder / "metrics.json").read_text())


def wilson(correct, n):
    from scipy.stats import binomtest

    if not n:
        return None, None
    ci = binomtest(correct, n).proportion_ci(method="wilson")
    return round(ci.low, 4), round(ci.high, 4)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SHARED / "hh_rlhf_pairs.jsonl.gz")
    parser.add_argument("--model", choices=["default", "tiny"], default="default")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--pool", type=int, default=1200, help="pairs read from the file (seed + pool + held-out)")
    parser.add_argument("--seed-pairs", type=int, default=64)
    parser.add_argument("--n", type=int, default=128, help="pairs each selection adds to the seed pairs")
    parser.add_argument("--heldout", type=int, default=300)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--lora-r", type=int, default=16, help="0: full fine-tuning")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not args.data.exists():
        sys.exit(f"{args.data} is missing (the shared data folder).")
    work = Path(tempfile.mkdtemp(prefix="rankloop-active-"))
    began = time.perf_counter()

    def log(message):
        print(f"[{time.perf_counter() - began:6.0f} s] {message}", flush=True)

    if args.model == "tiny":
        from models_app.tiny import build_tiny_model

        model_dir = build_tiny_model(work / "tiny")
    else:
        model_dir = default_model_dir(work / "models")
    rows = fitting(read_pairs(args.data, args.pool), model_dir, args.max_length)
    log(f"{len(rows)} of the first {args.pool} pairs fit max_length {args.max_length}")
    train_rows, heldout_rows = split_by_prompt(rows, args.heldout, args.seed)
    rng = random.Random(args.seed)
    rng.shuffle(train_rows)
    seed_rows, pool = train_rows[:args.seed_pairs], train_rows[args.seed_pairs:]
    if len(pool) < args.n:
        sys.exit(f"the pool has {len(pool)} pairs, fewer than --n {args.n}: read more with --pool")
    eval_file = write_jsonl(work / "heldout.jsonl", heldout_rows)
    log(f"{len(seed_rows)} seed pairs, a pool of {len(pool)}, {len(heldout_rows)} held-out pairs")

    seed_metrics = train_reward(model_dir, write_jsonl(work / "seed.jsonl", seed_rows), eval_file, work / "rm-seed",
                                args, log)
    tasks = [{"id": i, "prompt": row["prompt"], "answers": [text(row["chosen"]), text(row["rejected"])]}
             for i, row in enumerate(pool)]
    launch("score.py", {"reward_model_path": str(work / "rm-seed" / "final"),
                        "tasks_file": write_jsonl(work / "pool.jsonl", tasks),
                        "output_file": str(work / "scores.jsonl"), "max_length": args.max_length,
                        "batch_size": 2 * args.batch_size}, work / "score", log)
    margins = {row["id"]: row["margin"] for row in map(json.loads, (work / "scores.jsonl").read_text().splitlines())}
    uncertain = [pool[i] for i in sorted(margins, key=margins.get)[:args.n]]
    randomly = rng.sample(pool, args.n)

    results = {}
    for name, chosen in (("uncertainty", uncertain), ("random", randomly)):
        metrics = train_reward(model_dir, write_jsonl(work / f"{name}.jsonl", seed_rows + chosen), eval_file,
                               work / f"rm-{name}", args, log)
        low, high = wilson(metrics["eval_correct"], metrics["eval_pairs"])
        results[name] = {"accuracy": metrics["eval_accuracy"], "ci_low": low, "ci_high": high,
                         "pairs": metrics["train_pairs"]}
        log(f"{name}: held-out accuracy {metrics['eval_accuracy']:.3f} [{low}, {high}] "
            f"on {metrics['eval_pairs']} pairs, trained on {metrics['train_pairs']}")
    figures = {
        "model": args.model, "device": args.device, "seed_pairs": len(seed_rows), "pool_pairs": len(pool),
        "added_pairs": args.n, "pairs_per_model": results["random"]["pairs"],
        "heldout_pairs": len(heldout_rows), "minutes": round((time.perf_counter() - began) / 60, 1),
        "seed_heldout_accuracy": seed_metrics["eval_accuracy"],
        "uncertainty_heldout_accuracy_ci": [results["uncertainty"]["ci_low"], results["uncertainty"]["ci_high"]],
        "random_heldout_accuracy_ci": [results["random"]["ci_low"], results["random"]["ci_high"]],
        "uncertainty_pairs": results["uncertainty"]["pairs"], "random_pairs": results["random"]["pairs"],
        "uncertainty_heldout_accuracy": results["uncertainty"]["accuracy"],
        "random_heldout_accuracy": results["random"]["accuracy"],
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
