"""Decoding configs: complete when valid, refused with a message saying which setting."""
import pytest

from models_app.decoding import DEFAULTS, DecodingConfigError, validate_decoding


def test_defaults_fill_a_partial_config():
    clean = validate_decoding({"temperature": "0.5", "max_new_tokens": 16})
    assert clean == {**DEFAULTS, "temperature": 0.5, "max_new_tokens": 16}


@pytest.mark.parametrize(
    "config, message",
    [
        ({"top_p": 0}, "top_p must be in (0, 1]"),
        ({"top_p": 1.5}, "top_p must be in (0, 1]"),
        ({"temperature": -0.1}, "temperature must not be negative"),
        ({"temperature": 0}, "set strategy to greedy"),
        ({"strategy": "beam", "temperature": 0.3}, "beam search with sampling is not supported"),
        ({"strategy": "sample", "num_beams": 4}, "num_beams applies to strategy beam only"),
        ({"strategy": "beam", "num_beams": 1}, "num_beams of at least 2"),
        ({"strategy": "nucleus"}, "strategy must be one of"),
        ({"max_new_tokens": 0}, "max_new_tokens must be between 1"),
        ({"top_k": -1}, "top_k must be 0 (off) or positive"),
        ({"repetition_penalty": 0}, "repetition_penalty must be in (0, 10]"),
        ({"max_new_tokens": "lots"}, "max_new_tokens must be a number"),
        ({"max_new_tokens": 1.5}, "whole number"),
        ({"beams": 3}, "Unknown decoding setting(s): beams"),
    ],
)
def test_out_of_range_settings_are_refused_with_a_clear_message(config, message):
    with pytest.raises(DecodingConfigError) as error:
        validate_decoding(config)
    assert message in str(error.value)


def test_max_new_tokens_over_the_model_context_is_refused():
    assert validate_decoding({"max_new_tokens": 511}, max_context=512)["max_new_tokens"] == 511
    with pytest.raises(DecodingConfigError, match="between 1 and 511 \\(the model's context\\)"):
        validate_decoding({"max_new_tokens": 600}, max_context=512)
