"""What the tests measure on saved models, with plain transformers: how often sampled answers
contain the marker, and the chosen-minus-rejected log-probability margin of preference pairs."""
from __future__ import annotations

from pathlib import Path

from tests.support.synthetic import MARKER


def load(path: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(path, dtype="float32").eval()
    return model, AutoTokenizer.from_pretrained(path, padding_side="left")


def marker_share(path: Path, prompts: list[list[dict]], *, samples: int = 8, max_new_tokens: int = 12,
                 seed: int = 1234) -> float:
    """Share of sampled answers (temperature 1, fixed seed) that contain the marker word."""
    import torch

    model, tokenizer = load(path)
    texts = [tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=False) for p in prompts]
    batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    torch.manual_seed(seed)
    with torch.inference_mode():
        out = model.generate(**batch, do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
                             max_new_tokens=max_new_tokens, num_return_sequences=samples,
                             pad_token_id=tokenizer.pad_token_id)
    answers = tokenizer.batch_decode(out[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
    return sum(f" {MARKER}" in f" {answer}" for answer in answers) / len(answers)


def answer_logprob(model, tokenizer, prompt, answer) -> float:
    """Sum of the answer tokens' log-probabilities after the prompt: chat template for messages,
    the texts joined for strings (TRL's standard format)."""
    import torch

    if isinstance(prompt, str):
        prompt_ids = tokenizer(prompt)["input_ids"]
        ids = tokenizer(prompt + answer)["input_ids"]
    else:
        prompt_ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True,
                                                   return_dict=True)["input_ids"]
        ids = tokenizer.apply_chat_template(prompt + answer, tokenize=True, return_dict=True)["input_ids"]
    assert ids[:len(prompt_ids)] == prompt_ids
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([ids])).logits[0, len(prompt_ids) - 1:-1]
    logp = torch.log_softmax(logits.float(), -1).gather(-1, torch.tensor(ids[len(prompt_ids):])[:, None])
    return float(logp.sum())


def preference_margin(path: Path, rows: list[dict]) -> float:
    """Mean over pairs of log p(chosen) - log p(rejected) under the model."""
    model, tokenizer = load(path)
    margins = [answer_logprob(model, tokenizer, r["prompt"], r["chosen"])
               - answer_logprob(model, tokenizer, r["prompt"], r["rejected"]) for r in rows]
    return sum(margins) / len(margins)
