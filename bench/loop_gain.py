"""Does the loop learn? Two rounds in a row on the shared HH pairs with the default model and the
stage defaults of rlhf/training/defaults.py, each new policy scored against its parent by a judge
reward model that never saw the rounds' data.

The pairs that fit max_length are split by prompt (a hash of the prompt's messages, the same as
bench/rm_accuracy.py's): one side trains the judge (reward.py; or --judge-model, the model
rm_accuracy.py trained on that side); the other gives round 1's pairs, round 2's pairs (other
prompts: a new round's labels) and held-out prompts and pairs for the evaluations (never trained
on by anything).

- round 1: reward model (reward.py) on its pairs, then DPO (dpo.py) from the default model;
- round 2: reward model on every label so far (round 1's pairs and its own), then GRPO (grpo.py)
  against it from round 1's policy;
- each round: evaluate.py, new policy against its parent, on the held-out prompts, by the round's
  reward model and by the judge: mean judge reward of each policy and the paired gain with 95%
  t intervals, the judge's win rate over the parent with a bootstrap interval, and the round's
  wall time (its reward model + policy stage + evaluation; the judge's training is not in it).

    .venv/bin/python bench/loop_gain.py --quick           # smoke size: 21 min on a shared 2-core box
                                                          # (with --judge-model; a judge of 256 pairs adds ~35)
    .venv/bin/python bench/loop_gain.py                   # CPU size
    .venv/bin/python bench/loop_gain.py --device cuda     # realistic size
    .venv/bin/python bench/loop_gain.py --workdir W --resume   # continue a run in W (finished stages kept)

Last line: {"rounds": [{"judge_win_rate", "judge_win_rate_ci_low", "judge_reward_gain", "wall_s", ...}],
"min_judge_win_rate_ci_low", "max_round_wall_s", ...}.
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

from rlhf.training import defaults  # noqa: E402

# pairs per round stage (round 1, round 2), judge pairs, held-out pairs and prompts, GRPO steps, answer length
SIZES = {
    "quick": {"pairs": 32, "judge_pairs": 256, "heldout_pairs": 64, "eval_prompts": 12, "grpo_steps": 8,
              "new_tokens": 32, "max_length": 128},
    "cpu": {"pairs": 160, "judge_pairs": 256, "heldout_pairs": 150, "eval_prompts": 64, "grpo_steps": 20,
            "new_tokens": 48, "max_length": 128},
    "cuda": {"pairs": 1200, "judge_pairs": 2500, "heldout_pairs": 600, "eval_prompts": 128, "grpo_steps": 100,
             "new_tokens": 96, "max_length": 512},
}


JUDGE_SIDE = 0.4  # bench/rm_accuracy.py's held-out share: its training side is the judge's side here


def split(rows, sizes):
    """By prompt, with bench/rm_accuracy.py's own hash: the judge's side is the pairs rm_accuracy
    trains on (so its model can be the judge, --judge-model); the rounds and the evaluation use
    only the prompts it holds out."""
    judge = [r for r in rows if stages.bucket(r, "heldout") >= JUDGE_SIDE]
    rest = [r for r in rows if stages.bucket(r, "heldout") < JUDGE_SIDE]
    heldout = [r for r in rest if stages.bucket(r, "eval") < 0.3]
    train = [r for r in rest if stages.bucket(r, "eval") >= 0.3]
    n = sizes["pairs"]
    round1, round2 = train[:n], train[n:2 * n]
    if len(round2) < n // 2:  # not enough prompts for a second disjoint set: round 2 relabels round 1's prompts
        round2 = train[:n]
    prompts, seen = [], set()
    for row in heldout:
        key = stages.prompt_key(row)
        if key not in seen:
            seen.add(key)
            prompts.append({"id": row["id"], "prompt": row["prompt"]})
    return {"judge": judge[:sizes["judge_pairs"]], "round1": round1, "round2": round2,
            "heldout": heldout[:sizes["heldout_pairs"]], "prompts": prompts[:sizes["eval_prompts"]]}


def config(stage_defaults, device, **files):
    values = {**stage_defaults, **stages.CPU, **files}
    if device == "cuda":
        values.update(bf16=True, dataloader_pin_memory=True)
    else:
        values["use_cpu"] = True
    return values


def summary(evaluation, seconds, name, algorithm):
    judge = evaluation["judge"]
    return {
        "round": name, "algorithm": algorithm,
        "judge_win_rate": stages.figure(judge["win_rate"]["mean"]),
        "judge_win_rate_ci_low": stages.figure(judge["win_rate"]["low"]),
        "judge_win_rate_ci_high": stages.figure(judge["win_rate"]["high"]),
        "judge_win_rate_verdict": judge["win_rate"]["verdict"],
        "judge_reward_gain": stages.figure(judge["reward_diff"]["mean"]),
        "judge_reward_gain_ci": [stages.figure(judge["reward_diff"]["low"]),
                                 stages.figure(judge["reward_diff"]["high"])],
        "judge_reward_new": stages.figure(judge["reward_new"]["mean"]),
        "judge_reward_new_ci": [stages.figure(judge["reward_new"]["low"]), stages.figure(judge["reward_new"]["high"])],
        "judge_reward_old": stages.figure(judge["reward_old"]["mean"]),
        "judge_reward_old_ci": [stages.figure(judge["reward_old"]["low"]), stages.figure(judge["reward_old"]["high"])],
        "reward_gain": stages.figure(evaluation["reward_diff"]["mean"]),
        "reward_gain_verdict": evaluation["reward_diff"]["verdict"],
        "win_rate": stages.figure(evaluation["win_rate"]["mean"]),
        "kl_to_parent": stages.figure(evaluation["kl_new_old"]["mean"]),
        "rm_accuracy": stages.figure(evaluation["rm_accuracy"]["mean"]),
        "rm_accuracy_ci_low": stages.figure(evaluation["rm_accuracy"]["low"]),
        "rm_pairs": evaluation["rm_accuracy"]["pairs"],
        "judge_disagreements": len(evaluation["judge_disagreements"]),
        "eval_prompts": evaluation["figures"]["eval_prompts"],
        "wall_s": round(seconds, 1),
    }


def report(s):
    print(f"{s['round']} ({s['algorithm']}): judge win rate over the parent {s['judge_win_rate']:.3f} "
          f"[{s['judge_win_rate_ci_low']:.3f}, {s['judge_win_rate_ci_high']:.3f}] ({s['judge_win_rate_verdict']}); "
          f"judge reward {s['judge_reward_old']:.3f} -> {s['judge_reward_new']:.3f}, gain {s['judge_reward_gain']:.3f} "
          f"{s['judge_reward_gain_ci']}; own reward model: gain {s['reward_gain']:.3f} ({s['reward_gain_verdict']}), "
          f"held-out accuracy {s['rm_accuracy']:.3f} on {s['rm_pairs']} pairs; KL {s['kl_to_parent']:.3f}; "
          f"{s['eval_prompts']} prompts; {s['wall_s'] / 60:.1f} min", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--quick", action="store_true", help="Smoke size (CPU).")
    parser.add_argument("--data", type=Path, default=stages.HH_PAIRS)
    parser.add_argument("--pairs", type=int, default=None, help="Pairs per reward model / DPO stage.")
    parser.add_argument("--eval-prompts", type=int, default=None)
    parser.add_argument("--judge-model", type=Path, default=None,
                        help="A judge already trained on the judge's side of the split: the final/ folder of "
                             "bench/rm_accuracy.py --workdir W (W/reward/out/final) at the same max_length.")
    parser.add_argument("--model", type=Path, default=None,
                        help="Start from this model directory instead of the default model (e.g. a tiny one, to "
                             "check the plumbing).")
    parser.add_argument("--max-length", type=int, default=None)
    parser.add_argument("--threads", type=int, default=0, help="OMP threads per process (0: torch's default).")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--resume", action="store_true",
                        help="With --workdir: keep the stages that already finished there with the same settings "
                             "(their recorded wall times count), run the rest.")
    options = parser.parse_args()
    if not options.data.exists():
        sys.exit(f"{options.data} is missing (the shared data folder; set RANKLOOP_SHARED_DATA).")
    if options.resume and not options.workdir:
        sys.exit("--resume needs --workdir (the folder of the run to continue).")
    size_name = "quick" if options.quick else options.device
    sizes = dict(SIZES[size_name])
    sizes.update({k: v for k, v in (("pairs", options.pairs), ("eval_prompts", options.eval_prompts),
                                    ("max_length", options.max_length)) if v})
    cuda = options.device == "cuda"
    work = options.workdir or Path(tempfile.mkdtemp(prefix="rankloop-loop-gain-"))
    threads = options.threads or None
    began = time.perf_counter()

    model = options.model or stages.default_model_dir()
    rows = stages.fits(stages.hh_pairs(options.data), model, sizes["max_length"])
    parts = split(rows, sizes)
    round1_ids = {r["id"] for r in parts["round1"]}  # round 2 relabels round 1's prompts when there are too few
    parts["labels-so-far"] = parts["round1"] + [r for r in parts["round2"] if r["id"] not in round1_ids]
    files = {name: stages.write_jsonl(work / "data" / f"{name}.jsonl", parts[name])
             for name in ("judge", "round1", "round2", "labels-so-far", "heldout", "prompts")}
    print(f"{len(rows)} HH pairs within {sizes['max_length']} tokens; judge {len(parts['judge'])}, round 1 "
          f"{len(parts['round1'])}, round 2 {len(parts['round2'])} pairs; {len(parts['prompts'])} held-out prompts, "
          f"{len(parts['heldout'])} held-out pairs ({size_name} size, {options.device})", flush=True)

    length = {"max_length": sizes["max_length"]}
    reward_defaults = {**(defaults.REWARD_GPU if cuda else defaults.REWARD), **length}
    dpo_defaults = {**(defaults.DPO_GPU if cuda else defaults.DPO), **length}
    grpo_defaults = {**defaults.GRPO, "max_steps": sizes["grpo_steps"], "max_completion_length": sizes["new_tokens"]}
    evaluate_defaults = {**defaults.EVALUATE, "max_new_tokens": sizes["new_tokens"], "max_prompts": None,
                         "max_length": sizes["max_length"], "prompts_file": str(files["prompts"]),
                         "pairs_file": str(files["heldout"])}

    def reward_model(name, train, heldout=False):
        """(A round's reward model is scored on the held-out pairs by evaluate.py.)"""
        run = stages.launch("reward", config(reward_defaults, options.device, model_name_or_path=str(model),
                                             train_file=str(train),
                                             **({"eval_file": str(files["heldout"])} if heldout else {})),
                            work / name, threads=threads, reuse=options.resume)
        m = run["metrics"]
        accuracy = f", held-out accuracy {m['eval_accuracy']:.3f} on {m['eval_pairs']} pairs" if heldout else ""
        print(f"  {name}: {m['train_pairs']} pairs, {m['global_step']} steps{accuracy}, "
              f"{run['seconds'] / 60:.1f} min", flush=True)
        return run

    def evaluate(name, old, new, reward):
        return stages.launch("evaluate", {**evaluate_defaults, "old_policy_path": str(old), "new_policy_path": str(new),
                                          "reward_model_path": str(reward), "judge_model_path": str(judge["final"]),
                                          "output_file": str(work / name / "evaluation.json")},
                             work / name, threads=threads, reuse=options.resume)

    if options.judge_model:
        judge = {"final": options.judge_model, "seconds": 0.0,
                 "metrics": json.loads((options.judge_model.parent / "metrics.json").read_text())}
        print(f"judge: {options.judge_model} (trained on {judge['metrics']['train_pairs']} pairs of the judge's "
              f"side, held-out accuracy {judge['metrics']['eval_accuracy']:.3f})", flush=True)
    else:
        print("judge reward model (prompts the rounds never see)…", flush=True)
        judge = reward_model("judge", files["judge"], heldout=True)

    rounds = []
    print("round 1: reward model, then DPO from the default model…", flush=True)
    rm1 = reward_model("round1-reward", files["round1"])
    dpo = stages.launch("dpo", config(dpo_defaults, options.device, model_name_or_path=str(model),
                                      train_file=str(files["round1"])), work / "round1-dpo", threads=threads,
                        reuse=options.resume)
    print(f"  DPO: {dpo['metrics']['global_step']} steps, final loss {dpo['metrics']['final_loss']}, "
          f"{dpo['seconds'] / 60:.1f} min", flush=True)
    ev1 = evaluate("round1-evaluate", model, dpo["final"], rm1["final"])
    rounds.append(summary(ev1["metrics"], rm1["seconds"] + dpo["seconds"] + ev1["seconds"], "round 1", "dpo"))
    report(rounds[-1])

    print("round 2: reward model, then GRPO from round 1's policy…", flush=True)
    # a project's second round trains its reward model on every label so far, not only the new ones
    rm2 = reward_model("round2-reward", files["labels-so-far"])
    prompts2 = stages.write_jsonl(work / "data" / "round2-prompts.jsonl",
                                  [{"id": r["id"], "prompt": r["prompt"]} for r in parts["round2"]])
    grpo = stages.launch("grpo", config(grpo_defaults, options.device, model_name_or_path=str(dpo["final"]),
                                        reward_model_path=str(rm2["final"]), train_file=str(prompts2)),
                         work / "round2-grpo", threads=threads, reuse=options.resume)
    print(f"  GRPO: {grpo['metrics']['global_step']} steps, {grpo['seconds'] / 60:.1f} min", flush=True)
    ev2 = evaluate("round2-evaluate", dpo["final"], grpo["final"], rm2["final"])
    rounds.append(summary(ev2["metrics"], rm2["seconds"] + grpo["seconds"] + ev2["seconds"], "round 2", "grpo"))
    report(rounds[-1])

    lows = [r["judge_win_rate_ci_low"] for r in rounds]
    print(json.dumps({
        "rounds": rounds, "min_judge_win_rate_ci_low": min(lows) if None not in lows else None,
        "max_round_wall_s": max(r["wall_s"] for r in rounds),
        "judge_accuracy": stages.figure(judge["metrics"]["eval_accuracy"]),
        "judge_pairs": judge["metrics"]["train_pairs"],
        "size": size_name, "device": options.device, "pairs_per_stage": sizes["pairs"],
        "eval_prompts": len(parts["prompts"]), "total_minutes": round((time.perf_counter() - began) / 60, 2),
    }))


if __name__ == "__main__":
    main()
