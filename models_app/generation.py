"""Batched generation: chat template, left padding, K answers per prompt, token counts and
latency. Pure model code (no database): services decide what to do with the answers."""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from .decoding import generate_kwargs

TRUNCATE, REFUSE = "truncate", "refuse"


@dataclass
class EncodedPrompt:
    ids: list[int]
    note: str = ""
    refused: str = ""


@dataclass
class PromptAnswers:
    """The K answers to one prompt (empty, with `refused` set, when the prompt was refused)."""

    texts: list[str] = field(default_factory=list)
    completion_tokens: list[int] = field(default_factory=list)
    # Per answer, why it ended: "stop" (the model's end-of-sequence) or "length" (cut at max_new_tokens).
    finish_reasons: list[str] = field(default_factory=list)
    prompt_tokens: int = 0
    latency_ms: float = 0.0
    note: str = ""
    refused: str = ""


def as_messages(prompt) -> list[dict]:
    """Chat messages from plain text or a message list."""
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [{"role": m["role"], "content": m["content"]} for m in prompt]


def encode_prompt(tokenizer, messages, *, max_prompt_tokens: int, long_prompts: str = TRUNCATE) -> EncodedPrompt:
    """Token ids of the chat-templated prompt; one over `max_prompt_tokens` is cut from the left
    (keeping the latest turns and the assistant header) with a note, or refused."""
    text = tokenizer.apply_chat_template(as_messages(messages), add_generation_prompt=True, tokenize=False)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) <= max_prompt_tokens:
        return EncodedPrompt(ids)
    if long_prompts == REFUSE:
        return EncodedPrompt(
            [], refused=f"prompt is {len(ids)} tokens, over the limit of {max_prompt_tokens} (context minus new tokens)"
        )
    return EncodedPrompt(
        ids[-max_prompt_tokens:],
        note=f"prompt truncated from the left: kept the last {max_prompt_tokens} of {len(ids)} tokens",
    )


def _eos_ids(model, tokenizer) -> set[int]:
    eos = getattr(model.generation_config, "eos_token_id", None)
    if eos is None:
        eos = tokenizer.eos_token_id
    return set(eos if isinstance(eos, (list, tuple)) else [eos]) - {None}


def _step_reporter(on_step, prompt_length):
    """A stopping criterion that never stops: it tells `on_step` how many new tokens the batch has."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class StepReporter(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            on_step(input_ids.shape[1] - prompt_length)
            return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([StepReporter()])


def generate_answers(
    model, tokenizer, prompts, decoding: dict, *, k: int = 1, max_context: int,
    long_prompts: str = TRUNCATE, batch_size: int = 8, on_step=None,
) -> list[PromptAnswers]:
    """K answers to each prompt (text or messages), in batches of `batch_size` prompts.

    `decoding` is clean (see decoding.validate_decoding); its seed (one is drawn and written
    back when unset) seeds the whole call, so the same call repeats exactly. `on_step(tokens)`,
    when given, hears after each generation step how many new tokens the current batch has
    (progress within a batch, which on a CPU can take minutes)."""
    import torch

    if decoding.get("seed") is None:
        decoding["seed"] = random.randrange(2**31)
    max_prompt_tokens = max_context - decoding["max_new_tokens"]
    encoded = [
        encode_prompt(tokenizer, p, max_prompt_tokens=max_prompt_tokens, long_prompts=long_prompts) for p in prompts
    ]
    results = [PromptAnswers(note=e.note, refused=e.refused, prompt_tokens=len(e.ids)) for e in encoded]
    todo = [i for i, e in enumerate(encoded) if not e.refused]
    kwargs = generate_kwargs(decoding, num_return_sequences=k)
    kwargs["pad_token_id"] = tokenizer.pad_token_id
    eos = _eos_ids(model, tokenizer)
    if eos:
        kwargs["eos_token_id"] = sorted(eos)
    torch.manual_seed(decoding["seed"])
    for start in range(0, len(todo), batch_size):
        rows = todo[start:start + batch_size]
        batch = tokenizer.pad({"input_ids": [encoded[i].ids for i in rows]}, padding=True, return_tensors="pt")
        batch = {name: tensor.to(model.device) for name, tensor in batch.items()}
        began = time.perf_counter()
        extra = {"stopping_criteria": _step_reporter(on_step, batch["input_ids"].shape[1])} if on_step else {}
        with torch.inference_mode():
            output = model.generate(**batch, **kwargs, **extra)
        latency_ms = (time.perf_counter() - began) * 1000
        new_tokens = output[:, batch["input_ids"].shape[1]:].tolist()
        for row, prompt_index in enumerate(rows):
            answers = results[prompt_index]
            answers.latency_ms = latency_ms
            for sequence in new_tokens[row * k:(row + 1) * k]:
                end = next((j for j, token in enumerate(sequence) if token in eos), None)
                answer_ids = sequence if end is None else sequence[:end]
                text = tokenizer.decode(answer_ids, skip_special_tokens=True)
                # Byte-level models can emit a NUL byte, which Postgres text refuses.
                answers.texts.append(text.replace("\x00", "").strip())
                answers.completion_tokens.append(len(sequence) if end is None else end + 1)
                # No end-of-sequence token: generation stopped at max_new_tokens, mid-answer.
                answers.finish_reasons.append("length" if end is None else "stop")
    return results
