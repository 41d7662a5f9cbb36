"""Learnable synthetic data for the tiny model: a marker word the reward model should learn to
prefer, among neutral words that are each one token of the tiny tokenizer."""
from __future__ import annotations

import json
import random
from pathlib import Path

MARKER = "good"  # one token (" good") of models_app.tiny's tokenizer
NEUTRAL = ("the is are was to of and in that it for on with as you do at this but by from they we say her she "
           "or will my one all would there so up out if about who get which go me when make can like time just "
           "him know take people your some could them see other than then now look only come its over think also "
           "back use two how our work first well way even new want any day most us help train").split()


def write_jsonl(path: Path, rows) -> Path:
    path = Path(path)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


NOISE = "abcdefhijklmnpqrstuvwxyz0123456789.,;:!?()-'"


def _noise(rng: random.Random) -> str:
    """A random short string (several tokens, none of them the marker), so that the reward model
    learns the marker and not the look of the rest of the answer."""
    return "".join(rng.choice(NOISE) for _ in range(rng.randint(1, 4)))


def _words(rng: random.Random, n: int, *, noise: float = 0.0) -> list[str]:
    return [_noise(rng) if rng.random() < noise else rng.choice(NEUTRAL) for _ in range(n)]


def prompt_messages(i: int, rng: random.Random) -> list[dict]:
    return [{"role": "user", "content": f"Question {i}: {' '.join(_words(rng, 3))}?"}]


def marker_pairs(n: int, *, start: int = 0, seed: int = 0, conversational: bool = True) -> list[dict]:
    """Pairs whose chosen answer has the marker and whose rejected answer, otherwise the same, has a
    neutral word in its place. Prompts are numbered from `start`, so two calls with disjoint ranges
    have disjoint prompts (held-out pairs)."""
    rng = random.Random(seed)
    rows = []
    for i in range(start, start + n):
        prompt = prompt_messages(i, rng)
        words = _words(rng, rng.randint(2, 9), noise=0.3)
        at = rng.randint(1, len(words))  # never first, so the marker is always the token " good"
        chosen = " ".join(words[:at] + [MARKER] + words[at:])
        other = words[:at] + [rng.choice(NEUTRAL)] + words[at:] if rng.random() < 0.5 else words
        if rng.random() < 0.3:  # a rejected answer unlike the chosen one, longer or shorter
            other = _words(rng, rng.randint(1, 10), noise=0.3)
        rejected = " ".join(other)
        if conversational:
            rows.append({"id": i, "prompt": prompt, "chosen": [{"role": "assistant", "content": chosen}],
                         "rejected": [{"role": "assistant", "content": rejected}], "margin": 1.0})
        else:
            rows.append({"id": i, "prompt": prompt[0]["content"], "chosen": " " + chosen, "rejected": " " + rejected,
                         "margin": 1.0})
    return rows


def sft_rows(n: int, *, marker_share: float, start: int = 0, seed: int = 0) -> list[dict]:
    """Demonstrations: short answers of which `marker_share` contain the marker."""
    rng = random.Random(seed)
    rows = []
    for i in range(start, start + n):
        words = _words(rng, rng.randint(2, 4))
        if rng.random() < marker_share:
            words.insert(rng.randint(1, len(words)), MARKER)
        rows.append({"messages": [*prompt_messages(i, rng), {"role": "assistant", "content": " ".join(words)}]})
    return rows


def prompt_rows(n: int, *, start: int = 0, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    return [{"prompt": prompt_messages(i, rng)} for i in range(start, start + n)]


def random_pairs(n: int, *, start: int = 0, seed: int = 0) -> list[dict]:
    """The marker pairs with a coin flip for which answer is chosen: preferences nothing can learn
    (the marker is as often in the rejected answer as in the chosen one)."""
    rng = random.Random(seed + 7919)
    rows = marker_pairs(n, start=start, seed=seed)
    for row in rows:
        if rng.random() < 0.5:
            row["chosen"], row["rejected"] = row["rejected"], row["chosen"]
    return rows
