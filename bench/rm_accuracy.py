"""Held-out accuracy of a reward model trained from the default policy on the shared HH pairs, with
the stage script itself (rlhf/training/reward.py under accelerate launch) and the reward defaults of
rlhf/training/defaults.py.

The split is by prompt (a hash of the prompt's messages), so no held-out prompt is ever trained on;
pairs longer than max_length are left out of both sides before the split is sized (TRL would drop
them anyway), so every held-out pair is scored at the length the model trained with. The accuracy
is the trainer's own evaluation (reward.py's exact pair count) with its 95% Wilson interval.

    .venv/bin/python bench/rm_accuracy.py                        # CPU defaults (under 30 minutes)
    .venv/bin/python bench/rm_accuracy.py --train-pairs 300      # quicker, wider interval
    .venv/bin/python bench/rm_accuracy.py --device cuda          # all 6,267 shared pairs

Last line: {"accuracy", "ci_low", "ci_high", "heldout_pairs", "train_pairs", "minutes", ...}.
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support import stages  # noqa: E402

from rlhf.training import defaults, stats  # noqa: E402


def split(rows, heldout_fraction: float):
    heldout = [r for r in rows if stages.bucket(r, "heldout") < heldout_fraction]
    train = [r for r in rows if stages.bucket(r, "heldout") >= heldout_fraction]
    return train, heldout


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--data", type=Path, default=stages.HH_PAIRS)
    parser.add_argument("--train-pairs", type=int, default=None,
                        help="Pairs to train on (default: the CPU default; all with --device cuda).")
    parser.add_argument("--heldout-pairs", type=int, default=500, help="Held-out pairs (by prompt); 0: all.")
    parser.add_argument("--heldout-fraction", type=float, default=0.4, help="Share of the prompts held out.")
    parser.add_argument("--max-length", type=int, default=None)
    parser.add_argument("--epochs", type=float, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--lora-r", type=int, default=None, help="LoRA rank; 0 trains all weights.")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--threads", type=int, default=0, help="OMP threads per process (0: torch's default).")
    parser.add_argument("--rescore", action="store_true",
                        help="Also score the saved model on the held-out pairs with evaluate.py's scorer (the one "
                             "a round's evaluation uses) and print both figures.")
    parser.add_argument("--workdir", type=Path, default=None)
    options = parser.parse_args()
    if not options.data.exists():
        sys.exit(f"{options.data} is missing (the shared data folder; set RANKLOOP_SHARED_DATA).")
    cuda = options.device == "cuda"

    config = dict(defaults.REWARD_GPU if cuda else defaults.REWARD)
    # by epochs over the pairs chosen here (the CPU default's step cap is one pass over its
    # REWARD_TRAIN_PAIRS_CPU pairs, so the default run is the same either way)
    config["max_steps"] = -1
    train_pairs = options.train_pairs if options.train_pairs is not None else (
        0 if cuda else defaults.REWARD_TRAIN_PAIRS_CPU)
    heldout_pairs = 0 if cuda and options.heldout_pairs == 500 else options.heldout_pairs
    for key, value in (("max_length", options.max_length), ("num_train_epochs", options.epochs),
                       ("learning_rate", options.lr), ("per_device_train_batch_size", options.batch_size)):
        if value is not None:
            config[key] = value
    if options.lora_r is not None:
        config.update(use_peft=options.lora_r > 0, lora_r=options.lora_r or 16, lora_alpha=2 * (options.lora_r or 16))
    began = time.perf_counter()
    model = stages.default_model_dir()
    rows = stages.hh_pairs(options.data)
    total = len(rows)
    rows = stages.fits(rows, model, config["max_length"])
    train, heldout = split(rows, options.heldout_fraction)
    heldout = heldout[:heldout_pairs] if heldout_pairs else heldout
    train = train[:train_pairs] if train_pairs else train
    if heldout_pairs and len(heldout) < heldout_pairs:
        print(f"warning: only {len(heldout)} held-out pairs fit max_length {config['max_length']}")
    print(f"{total} pairs, {len(rows)} within max_length {config['max_length']}: training on {len(train)}, "
          f"holding out {len(heldout)} (other prompts)", flush=True)

    work = options.workdir or Path(tempfile.mkdtemp(prefix="rankloop-rm-accuracy-"))
    data = {"train_file": str(stages.write_jsonl(work / "train.jsonl", train)),
            "eval_file": str(stages.write_jsonl(work / "heldout.jsonl", heldout))}
    config.update(stages.CPU, model_name_or_path=str(model), **data)
    if cuda:
        config.update(bf16=True, dataloader_pin_memory=True)
    else:
        config["use_cpu"] = True
    run = stages.launch("reward", config, work / "reward", threads=options.threads or None)
    metrics = run["metrics"]
    figure = stats.wilson_interval(metrics["eval_correct"], metrics["eval_pairs"])
    rescored = None
    if options.rescore:
        from rlhf.training import evaluate

        model_, tokenizer = evaluate.load_scorer(str(run["final"]), "float32")
        rescored = evaluate.pair_accuracy(model_, tokenizer, heldout, config["max_length"], 16, 0.95)
        print(f"saved model scored by evaluate.py: {rescored['mean']:.4f} [{rescored['low']:.4f}, "
              f"{rescored['high']:.4f}] on {rescored['pairs']} pairs")
    minutes = (time.perf_counter() - began) / 60
    print(f"trained {metrics['global_step']} steps on {metrics['train_pairs']} pairs in {run['seconds'] / 60:.1f} min "
          f"(final loss {metrics['final_loss']:.4f}); settings: "
          + ", ".join(f"{k}={config[k]}" for k in ("learning_rate", "num_train_epochs", "max_length", "use_peft",
                                                      "lora_r", "per_device_train_batch_size") if k in config))
    print(f"held-out accuracy {figure['mean']:.4f} [{figure['low']:.4f}, {figure['high']:.4f}] (95% Wilson) on "
          f"{metrics['eval_pairs']} pairs; {minutes:.1f} minutes in all")
    print(json.dumps({
        "accuracy": stages.figure(figure["mean"]), "ci_low": stages.figure(figure["low"]),
        "ci_high": stages.figure(figure["high"]), "heldout_pairs": metrics["eval_pairs"],
        "train_pairs": metrics["train_pairs"], "minutes": round(minutes, 2),
        "train_minutes": round(run["seconds"] / 60, 2),
        "steps": metrics["global_step"], "final_loss": stages.figure(metrics["final_loss"]), "device": options.device,
        "max_length": config["max_length"], "learning_rate": config["learning_rate"],
        "epochs": config["num_train_epochs"], "lora_r": config["lora_r"] if config.get("use_peft") else 0,
        **({"rescored_accuracy": stages.figure(rescored["mean"]), "rescored_ci_low": stages.figure(rescored["low"]),
            "rescored_pairs": rescored["pairs"]} if rescored else {}),
    }))


if __name__ == "__main__":
    main()
