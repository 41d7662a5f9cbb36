"""Reward model from the default policy (LoRA) on the HH-RLHF pairs, through the platform: the
pairs go in as annotated comparisons, a round's reward stage trains (TRL RewardTrainer) and the
held-out accuracy is read off the new model version. The split is the platform's, by prompt.

    .venv/bin/python bench/rm_accuracy.py --limit 400 --epochs 1      # CPU-sized
    .venv/bin/python bench/rm_accuracy.py --limit 0 --epochs 1        # all pairs (GPU)
Last line: {"heldout_accuracy", "pairs_train", "pairs_heldout", ...}.
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support.rlhf import SHARED_DATA, bench_env, link_default_model, read_rows, seeded_round  # noqa: E402
from support.server import setup_django  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SHARED_DATA / "hh_rlhf_pairs.jsonl.gz")
    parser.add_argument("--limit", type=int, default=400, help="First N pairs of the file (0: all).")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--max-steps", type=int, default=-1)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--lora-r", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=384)
    parser.add_argument("--heldout-percent", type=int, default=15)
    parser.add_argument("--model", choices=["default", "tiny"], default="default")
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default).")
    options = parser.parse_args()
    if not options.data.exists():
        sys.exit(f"{options.data} is missing (the shared data folder).")

    store = Path(tempfile.mkdtemp(prefix="rankloop-rm-bench-")) / "models"
    store.mkdir(parents=True)
    env = bench_env(options.db, store)
    if options.threads:
        env["RLHF_TORCH_THREADS"] = str(options.threads)
    setup_django(env)
    from rlhf import launcher

    link_default_model(store)

    rows = read_rows(options.data, options.limit)
    reward = {"lora": True, "lora_r": options.lora_r, "lora_alpha": 2 * options.lora_r,
              "learning_rate": options.lr, "num_train_epochs": options.epochs, "max_steps": options.max_steps,
              "per_device_train_batch_size": options.batch_size, "max_length": options.max_length,
              "save_strategy": "no"}
    round, run, seed_s = seeded_round(rows, model=options.model, reward=reward,
                                      heldout_percent=options.heldout_percent)
    print(f"seeded {len(rows)} pairs into {round.project} in {seed_s:.1f} s; training the reward model…",
          flush=True)
    began = time.perf_counter()
    status = launcher.execute(run)
    train_s = time.perf_counter() - began
    run.refresh_from_db()
    round.refresh_from_db()
    if status != "succeeded":
        sys.exit(f"reward run {status}: {run.error}")
    metrics = round.reward_model.metrics
    print(f"reward model {round.reward_model}: {run.step} steps in {train_s:.1f} s")
    print(f"held-out accuracy {metrics['heldout_accuracy']:.4f} on {metrics['pairs_heldout']} pairs "
          f"(trained on {metrics['pairs_train']})")
    print(json.dumps({
        "heldout_accuracy": round_or_none(metrics["heldout_accuracy"]), "pairs_train": metrics["pairs_train"],
        "pairs_heldout": metrics["pairs_heldout"], "steps": run.step, "train_s": round_or_none(train_s),
        "model": options.model, "epochs": options.epochs, "lora_r": options.lora_r,
    }))


def round_or_none(value, digits=4):
    return None if value is None else round(value, digits)


if __name__ == "__main__":
    main()
