"""Decoding settings: one validated, complete dict that generation reads and every candidate
records. `validate_decoding` is the edge: anything out of range is refused with a message."""
from __future__ import annotations

import math

from rankloop.errors import InvalidInput

STRATEGIES = ("sample", "greedy", "beam")
# Absolute cap when the model is not known yet; with a model, its context is the limit.
MAX_NEW_TOKENS_CAP = 4096

DEFAULTS = {
    "strategy": "sample",
    "max_new_tokens": 128,
    "temperature": 0.8,
    "top_k": 50,
    "top_p": 0.95,
    "num_beams": 4,
    "repetition_penalty": 1.1,
    "seed": None,
}
SAMPLING_KEYS = ("temperature", "top_k", "top_p")


class DecodingConfigError(InvalidInput):
    """A decoding config out of range; the message says which setting and why."""

    code = "invalid_decoding"


def _number(config, key, kind):
    value = config[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        # Form posts give strings; accept numeric text.
        try:
            value = kind(str(value).strip())
        except (TypeError, ValueError):
            raise DecodingConfigError(f"{key} must be a number, got {value!r}.") from None
    if kind is int:
        if isinstance(value, float):
            if not value.is_integer():
                raise DecodingConfigError(f"{key} must be a whole number, got {value!r}.")
        value = int(value)
    else:
        value = float(value)
        if not math.isfinite(value):
            raise DecodingConfigError(f"{key} must be a finite number.")
    return value


def validate_decoding(config: dict | None, *, max_context: int | None = None) -> dict:
    """The complete, clean decoding settings for `config` (defaults filled in), or
    DecodingConfigError. With `max_context` (the model's context length), max_new_tokens must
    leave room for at least one prompt token."""
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise DecodingConfigError("The decoding config must be an object of settings.")
    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        raise DecodingConfigError(
            f"Unknown decoding setting(s): {', '.join(unknown)}. Known: {', '.join(DEFAULTS)}."
        )
    given = {key: value for key, value in config.items() if value is not None and value != ""}
    clean = {**DEFAULTS, **given}

    strategy = str(clean["strategy"]).strip().lower()
    if strategy not in STRATEGIES:
        raise DecodingConfigError(f"strategy must be one of {', '.join(STRATEGIES)}, got {clean['strategy']!r}.")
    clean["strategy"] = strategy

    for key in ("max_new_tokens", "top_k", "num_beams"):
        clean[key] = _number(clean, key, int)
    for key in ("temperature", "top_p", "repetition_penalty"):
        clean[key] = _number(clean, key, float)
    if clean["seed"] is not None:
        clean["seed"] = _number(clean, "seed", int)
        if not 0 <= clean["seed"] < 2**32:
            raise DecodingConfigError("seed must be between 0 and 2**32 - 1.")

    limit = MAX_NEW_TOKENS_CAP if max_context is None else max_context - 1
    if not 1 <= clean["max_new_tokens"] <= limit:
        where = "the model's context" if max_context is not None else "the cap"
        raise DecodingConfigError(
            f"max_new_tokens must be between 1 and {limit} ({where}), got {clean['max_new_tokens']}."
        )
    if clean["temperature"] < 0:
        raise DecodingConfigError(f"temperature must not be negative, got {clean['temperature']}.")
    if strategy == "sample" and clean["temperature"] == 0:
        raise DecodingConfigError("temperature 0 means greedy decoding: set strategy to greedy instead.")
    if clean["temperature"] > 10:
        raise DecodingConfigError(f"temperature must be at most 10, got {clean['temperature']}.")
    if not 0 < clean["top_p"] <= 1:
        raise DecodingConfigError(f"top_p must be in (0, 1], got {clean['top_p']}.")
    if clean["top_k"] < 0:
        raise DecodingConfigError(f"top_k must be 0 (off) or positive, got {clean['top_k']}.")
    if not 0 < clean["repetition_penalty"] <= 10:
        raise DecodingConfigError(
            f"repetition_penalty must be in (0, 10] (1.0 is off), got {clean['repetition_penalty']}."
        )
    if not 1 <= clean["num_beams"] <= 32:
        raise DecodingConfigError(f"num_beams must be between 1 and 32, got {clean['num_beams']}.")
    if strategy == "beam":
        if clean["num_beams"] < 2:
            raise DecodingConfigError("beam search needs num_beams of at least 2.")
        # Beam search here is deterministic; sampling settings given with it would be ignored.
        sampling_given = [k for k in SAMPLING_KEYS if k in given and given[k] != DEFAULTS[k]]
        if sampling_given:
            raise DecodingConfigError(
                "beam search with sampling is not supported: drop "
                f"{', '.join(sampling_given)} or use strategy sample."
            )
    elif "num_beams" in given and clean["num_beams"] > 1:
        raise DecodingConfigError(f"num_beams applies to strategy beam only (strategy is {strategy}).")
    return clean


def generate_kwargs(clean: dict, *, num_return_sequences: int) -> dict:
    """Keyword arguments for `model.generate` from clean decoding settings."""
    kwargs = {
        "max_new_tokens": clean["max_new_tokens"],
        "repetition_penalty": clean["repetition_penalty"],
        "num_return_sequences": num_return_sequences,
    }
    if clean["strategy"] == "sample":
        kwargs.update(
            do_sample=True, temperature=clean["temperature"], top_k=clean["top_k"], top_p=clean["top_p"],
        )
    elif clean["strategy"] == "beam":
        kwargs.update(do_sample=False, num_beams=max(clean["num_beams"], num_return_sequences), early_stopping=True)
    else:
        kwargs.update(do_sample=False, num_beams=1)
    return kwargs
