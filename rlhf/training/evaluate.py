"""Evaluate a new policy against the old one on held-out prompts (plain PyTorch + transformers).

For every prompt, each policy samples `samples_per_prompt` answers (batched, left padded, chat
template; temperature `temperature`, no top-k/top-p, the same seed for both policies, so identical
weights give identical answers); the round's reward model (and the judge, a reward model that did
not train on this round's data, when given) scores every answer. Written to output_file (JSON):

- per_prompt: each prompt's mean reward under each policy, their difference, the win rate of new
  over old, KL(new || old), and the judge's figures;
- reward_diff: mean over prompts of (new - old) mean reward, Student-t 95% interval over prompts;
- win_rate: P(a new answer beats an old answer) by the reward model, per prompt over all S x S
  answer pairs (ties half), then the mean over prompts with a percentile bootstrap interval over
  prompts (answers of one prompt are not independent, prompts are);
- kl_new_old: KL(new || old) estimated on the new policy's own samples, per sample the sum over its
  tokens of log p_new - log p_old (at the sampling temperature), mean per prompt, t interval over
  prompts;
- rm_accuracy: the reward model's accuracy on the held-out pairs (chosen scored above rejected),
  with the pair count and a Wilson interval; null (not measured) without held-out pairs;
- judge: reward_diff and win_rate by the judge, and judge_disagreements: the prompts on which the
  judge and the reward model prefer opposite policies;
- figures: the headline numbers flat (reward_gain, win_rate, kl_to_old, rm_accuracy_heldout, ...).

Each figure has a verdict: "gain" / "loss" when its interval excludes no change (0; 0.5 for win
rates and accuracy), otherwise "no detectable change"; KL's is "changed" or "no detectable change".

    python rlhf/training/evaluate.py --config run/evaluate.yaml

(or accelerate launch --quiet --num_processes 1 rlhf/training/evaluate.py --config ...: one process).
"""
import sys
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from rlhf.training import common, stats
from rlhf.training.progress import ProgressWriter


@dataclass
class EvaluateArguments:
    old_policy_path: str = field(metadata={"help": "Directory of the policy before the round."})
    new_policy_path: str = field(metadata={"help": "Directory of the policy the round trained."})
    reward_model_path: str = field(metadata={"help": "Directory of the round's reward model."})
    prompts_file: str = field(metadata={"help": "JSON Lines file of held-out prompts: {\"prompt\": [messages]}."})
    output_file: str = field(metadata={"help": "Where the evaluation's JSON goes."})
    judge_model_path: str | None = field(
        default=None, metadata={"help": "A reward model that did not train on this round's data."})
    pairs_file: str | None = field(default=None, metadata={"help": "JSON Lines file of held-out preference pairs."})
    progress_file: str | None = field(default=None, metadata={"help": "Append progress as JSON Lines to this file."})
    samples_per_prompt: int = field(default=4, metadata={"help": "Answers sampled per prompt and policy (S)."})
    max_new_tokens: int = 32
    temperature: float = 1.0
    seed: int = 0
    batch_size: int = field(default=8, metadata={"help": "Prompts per generation batch (x S sequences)."})
    max_prompt_length: int = field(default=256, metadata={"help": "Keep at most this many (last) prompt tokens."})
    max_prompts: int | None = field(default=None, metadata={"help": "Use only the first N prompts."})
    max_length: int | None = field(
        default=None, metadata={"help": "Leave out held-out pairs longer than this (the reward model's max_length)."})
    confidence: float = 0.95
    bootstrap_resamples: int = 10_000
    dtype: str = field(default="float32", metadata={"help": "Weights dtype to evaluate in."})


# --- models --------------------------------------------------------------------------------------


def device():
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_policy(path, dtype):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device()).eval()


def load_scorer(path, dtype):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, dtype=dtype).to(device()).eval()
    tokenizer = common.load_tokenizer(path)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def prompt_ids(tokenizer, prompt, max_prompt_length):
    """A prompt's token ids as the policy continues it: chat template with the assistant turn opened
    (conversational prompt) or the text itself (standard)."""
    if isinstance(prompt, list):
        text = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    else:
        ids = tokenizer(prompt)["input_ids"]
    return ids[-max_prompt_length:]


def left_padded(sequences, pad_id):
    """input_ids, attention_mask and position_ids of left-padded sequences."""
    import torch

    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        ids[row, width - len(sequence):] = torch.tensor(sequence, dtype=torch.long)
        mask[row, width - len(sequence):] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids.to(device()), mask.to(device()), positions.to(device())


def stop_ids(model, tokenizer) -> set[int]:
    ids = model.generation_config.eos_token_id
    ids = set(ids if isinstance(ids, list) else [ids] if ids is not None else [])
    return ids | ({tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set())


def sample(model, tokenizer, prompts, args, on_batch):
    """S answers per prompt: (token ids up to and including the first stop token, text)."""
    import torch
    from transformers import GenerationConfig

    stops = stop_ids(model, tokenizer)
    # Plain sampling at `temperature` (what KL is computed for): every filter the model's own
    # generation_config might turn on is set to a no-op here.
    config = GenerationConfig(do_sample=True, temperature=args.temperature, top_k=0, top_p=1.0, min_p=0.0,
                              typical_p=1.0, repetition_penalty=1.0, no_repeat_ngram_size=0,
                              max_new_tokens=args.max_new_tokens,
                              num_return_sequences=args.samples_per_prompt,
                              pad_token_id=tokenizer.pad_token_id, eos_token_id=sorted(stops) or None)
    torch.manual_seed(args.seed)  # the same random numbers for both policies
    answers = []
    for start in range(0, len(prompts), args.batch_size):
        batch = [prompt_ids(tokenizer, p, args.max_prompt_length) for p in prompts[start:start + args.batch_size]]
        ids, mask, _ = left_padded(batch, tokenizer.pad_token_id)
        with torch.inference_mode():
            out = model.generate(input_ids=ids, attention_mask=mask, generation_config=config)
        for row, generated in enumerate(out[:, ids.shape[1]:].tolist()):
            cut = next((i + 1 for i, token in enumerate(generated) if token in stops), len(generated))
            if row % args.samples_per_prompt == 0:
                answers.append([])
            answers[-1].append((generated[:cut], tokenizer.decode(generated[:cut], skip_special_tokens=True)))
        on_batch()
    return answers


def by_length(sequences, batch_size):
    """Batches of indices into `sequences`, shortest first: sequences of like lengths pad less (the
    held-out prompts' lengths vary several-fold, and every padded position costs a full forward)."""
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]


def sequence_logprobs(model, sequences, prompt_lengths, temperature, pad_id, batch_size):
    """Per sequence, the sum of log p(token) over the tokens after its prompt."""
    import torch

    totals = [0.0] * len(sequences)
    for rows in by_length(sequences, batch_size):
        ids, mask, positions = left_padded([sequences[i] for i in rows], pad_id)
        answers = [len(sequences[i]) - prompt_lengths[i] for i in rows]
        # Left padded, the answers are the batch's last positions: the logits of the last
        # max(answers) + 1 positions are all that is needed (the vocabulary projection and its
        # log-softmax over every prompt position were most of the work).
        keep = max(answers) + 1
        with torch.inference_mode():
            logits = model(input_ids=ids, attention_mask=mask, position_ids=positions,
                           logits_to_keep=keep).logits[:, :-1].float()
        targets = ids[:, ids.shape[1] - keep + 1:]  # logits[:, j] predicts targets[:, j]
        logp = torch.log_softmax(logits / temperature, -1).gather(-1, targets[..., None]).squeeze(-1)
        for row, (i, n) in enumerate(zip(rows, answers)):
            totals[i] = float(logp[row, logp.shape[1] - n:].sum()) if n else 0.0
    return totals


def conversation_ids(tokenizer, prompt, answer):
    """Token ids of prompt + answer as the reward model was trained on them (TRL's RewardTrainer):
    the chat template over the whole conversation, or the texts joined with an eos token."""
    if isinstance(prompt, list):
        messages = prompt + (answer if isinstance(answer, list) else [{"role": "assistant", "content": answer}])
        return tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"]
    text = prompt + answer
    if tokenizer.eos_token and not text.endswith(tokenizer.eos_token):
        text += tokenizer.eos_token
    return tokenizer(text)["input_ids"]


def scores(model, tokenizer, sequences, batch_size):
    """The reward model's score of each token sequence."""
    import torch

    result = [0.0] * len(sequences)
    for rows in by_length(sequences, batch_size):
        batch = tokenizer.pad({"input_ids": [sequences[i] for i in rows]}, padding=True, return_tensors="pt",
                              padding_side="right")
        with torch.inference_mode():
            logits = model(**{k: v.to(device()) for k, v in batch.items()}).logits
        for i, score in zip(rows, logits[:, 0].float().tolist()):
            result[i] = score
    return result


def score_answers(model, tokenizer, prompts, answers, batch_size):
    """Scores shaped like answers: per prompt, one score per answer."""
    flat = [conversation_ids(tokenizer, p, text) for p, group in zip(prompts, answers) for _, text in group]
    values = iter(scores(model, tokenizer, flat, batch_size))
    return [[next(values) for _ in group] for group in answers]


def pair_accuracy(model, tokenizer, pairs, max_length, batch_size, confidence):
    """Held-out pairs whose chosen answer scores above the rejected one, with a Wilson interval."""
    def encoded_pair(row):
        prompt = row.get("prompt", "" if isinstance(row["chosen"], str) else [])  # an implicit prompt is in both
        return conversation_ids(tokenizer, prompt, row["chosen"]), conversation_ids(tokenizer, prompt, row["rejected"])

    encoded = [encoded_pair(row) for row in pairs]
    kept = [(c, r) for c, r in encoded if max_length is None or max(len(c), len(r)) <= max_length]
    chosen = scores(model, tokenizer, [c for c, _ in kept], batch_size)
    rejected = scores(model, tokenizer, [r for _, r in kept], batch_size)
    correct = sum(c > r for c, r in zip(chosen, rejected))
    figure = stats.with_verdict(stats.wilson_interval(correct, len(kept), confidence), 0.5,
                                up="above chance", down="below chance")
    return {**figure, "pairs": len(kept), "correct": int(correct), "pairs_skipped": len(encoded) - len(kept)}


# --- figures -------------------------------------------------------------------------------------


def reward_figures(new_scores, old_scores, args):
    """Per prompt means and win rates of one scorer, and their summary with intervals."""
    import numpy as np

    new_means = [float(np.mean(s)) for s in new_scores]
    old_means = [float(np.mean(s)) for s in old_scores]
    diffs = [n - o for n, o in zip(new_means, old_means)]
    wins = [stats.win_fraction(n, o) for n, o in zip(new_scores, old_scores)]
    summary = {
        "reward_new": stats.mean_interval(new_means, args.confidence),
        "reward_old": stats.mean_interval(old_means, args.confidence),
        "reward_diff": stats.with_verdict(stats.mean_interval(diffs, args.confidence), 0.0),
        "win_rate": stats.with_verdict(stats.bootstrap_interval(wins, args.confidence,
                                                                resamples=args.bootstrap_resamples, seed=args.seed),
                                       0.5),
    }
    return {"new": new_means, "old": old_means, "diff": diffs, "win": wins}, summary


def prefers(diff):
    return "new" if diff > 0 else "old" if diff < 0 else "neither"


def main(args):
    import numpy as np
    import torch

    if args.samples_per_prompt < 1 or args.max_new_tokens < 1 or args.batch_size < 1:
        raise ValueError("samples_per_prompt, max_new_tokens and batch_size must be at least 1")
    progress = ProgressWriter(args.progress_file)
    prompt_rows = common.check_and_read(args.prompts_file, required=("prompt",), texts=("prompt",), what="prompt")
    prompt_rows = prompt_rows[: args.max_prompts] if args.max_prompts else prompt_rows
    pairs = common.check_and_read(args.pairs_file, required=("chosen", "rejected"),
                                  texts=("prompt", "chosen", "rejected"), what="preference") if args.pairs_file else []
    prompts = [row["prompt"] for row in prompt_rows]
    batches = -(-len(prompts) // args.batch_size)
    total, done = 2 * batches + 4, 0

    def step():
        nonlocal done
        done += 1
        progress.write("step", done, total)

    progress.write("begin", 0, total)
    tokenizer = common.load_tokenizer(args.new_policy_path, padding_side="left")
    if common.load_tokenizer(args.old_policy_path).get_vocab() != tokenizer.get_vocab():
        raise ValueError("the old and the new policy have different tokenizers; KL(new || old) needs one")
    new_model = load_policy(args.new_policy_path, args.dtype)
    answers = {"new": sample(new_model, tokenizer, prompts, args, step)}
    old_model = load_policy(args.old_policy_path, args.dtype)
    answers["old"] = sample(old_model, tokenizer, prompts, args, step)

    # KL(new || old) on the new policy's samples
    lengths = [len(prompt_ids(tokenizer, p, args.max_prompt_length)) for p in prompts]
    sequences = [prompt_ids(tokenizer, p, args.max_prompt_length) + ids for p, group in zip(prompts, answers["new"])
                 for ids, _ in group]
    prompt_lengths = [n for n, group in zip(lengths, answers["new"]) for _ in group]
    width = args.batch_size * args.samples_per_prompt
    logp_new = sequence_logprobs(new_model, sequences, prompt_lengths, args.temperature, tokenizer.pad_token_id, width)
    logp_old = sequence_logprobs(old_model, sequences, prompt_lengths, args.temperature, tokenizer.pad_token_id, width)
    kl = (np.array(logp_new) - np.array(logp_old)).reshape(len(prompts), args.samples_per_prompt).mean(1).tolist()
    del new_model, old_model
    step()

    rm, rm_tokenizer = load_scorer(args.reward_model_path, args.dtype)
    rm_scores = {side: score_answers(rm, rm_tokenizer, prompts, answers[side], width) for side in answers}
    per_prompt_rm, summary = reward_figures(rm_scores["new"], rm_scores["old"], args)
    step()
    accuracy = (pair_accuracy(rm, rm_tokenizer, pairs, args.max_length, width, args.confidence) if pairs else
                {**stats.with_verdict(stats.wilson_interval(0, 0, args.confidence), 0.5), "pairs": 0, "correct": 0,
                 "pairs_skipped": 0})
    del rm
    step()

    judge, per_prompt_judge, disagreements = None, None, []
    if args.judge_model_path:
        judge_model, judge_tokenizer = load_scorer(args.judge_model_path, args.dtype)
        judge_scores = {side: score_answers(judge_model, judge_tokenizer, prompts, answers[side], width)
                        for side in answers}
        per_prompt_judge, judge = reward_figures(judge_scores["new"], judge_scores["old"], args)
        disagreements = [
            {"index": i, "id": prompt_rows[i].get("id"), "prompt": prompts[i], "reward_model_diff": rm_diff,
             "judge_diff": judge_diff}
            for i, (rm_diff, judge_diff) in enumerate(zip(per_prompt_rm["diff"], per_prompt_judge["diff"]))
            if {prefers(rm_diff), prefers(judge_diff)} == {"new", "old"}]
    step()

    per_prompt = []
    for i, prompt in enumerate(prompts):
        row = {"index": i, "id": prompt_rows[i].get("id"), "prompt": prompt,
               "reward_new": per_prompt_rm["new"][i], "reward_old": per_prompt_rm["old"][i],
               "reward_diff": per_prompt_rm["diff"][i], "win_rate": per_prompt_rm["win"][i], "kl_new_old": kl[i],
               "answers_new": [text for _, text in answers["new"][i]],
               "answers_old": [text for _, text in answers["old"][i]]}
        if per_prompt_judge:
            row.update(judge_reward_new=per_prompt_judge["new"][i], judge_reward_old=per_prompt_judge["old"][i],
                       judge_reward_diff=per_prompt_judge["diff"][i], judge_win_rate=per_prompt_judge["win"][i])
        per_prompt.append(row)
    kl_figure = stats.with_verdict(stats.mean_interval(kl, args.confidence), 0.0, up="changed", down="changed")
    result = {
        **summary, "kl_new_old": kl_figure, "rm_accuracy": accuracy,
        "judge": judge, "judge_disagreements": disagreements,
        "figures": {"reward_gain": summary["reward_diff"]["mean"], "win_rate": summary["win_rate"]["mean"],
                    "kl_to_old": kl_figure["mean"], "rm_accuracy_heldout": accuracy["mean"],
                    "rm_pairs_heldout": accuracy["pairs"], "eval_prompts": len(prompts),
                    "judge_reward_gain": judge["reward_diff"]["mean"] if judge else None,
                    "judge_win_rate": judge["win_rate"]["mean"] if judge else None},
        "per_prompt": per_prompt,
        "settings": {"samples_per_prompt": args.samples_per_prompt, "max_new_tokens": args.max_new_tokens,
                     "temperature": args.temperature, "seed": args.seed, "confidence": args.confidence,
                     "old_policy_path": args.old_policy_path, "new_policy_path": args.new_policy_path,
                     "reward_model_path": args.reward_model_path, "judge_model_path": args.judge_model_path,
                     "torch": torch.__version__},
    }
    common.write_json(args.output_file, result)
    progress.write("end", total, total)


def make_parser():
    from trl import TrlParser

    return TrlParser((EvaluateArguments,))


if __name__ == "__main__":
    common.run(main, make_parser())
