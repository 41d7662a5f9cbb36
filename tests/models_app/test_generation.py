"""Generation with the tiny random Llama: determinism, seeds, beams, batching, long prompts."""
import pytest

from models_app.decoding import validate_decoding
from models_app.generation import generate_answers
from models_app.loading import load_tokenizer

PROMPTS = [
    "Explain the reward model to me",
    "Hi",
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Write python code that prints a list"}],
    "What is a good answer to this question about data and train",
]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)).eval()
    return model, load_tokenizer(tiny_model_dir)


def answers(tiny, prompts, k=1, batch_size=8, **decoding):
    model, tokenizer = tiny
    clean = validate_decoding({"max_new_tokens": 12, "repetition_penalty": 1.0, **decoding})
    return generate_answers(model, tokenizer, prompts, clean, k=k, max_context=512, batch_size=batch_size)


def texts(results):
    return [r.texts for r in results]


def test_greedy_is_deterministic(tiny):
    first = texts(answers(tiny, PROMPTS, strategy="greedy"))
    assert first == texts(answers(tiny, PROMPTS, strategy="greedy"))
    assert all(len(t) == 1 and t[0] for t in first)


def test_top_k_1_sampling_equals_greedy(tiny):
    greedy = texts(answers(tiny, PROMPTS, strategy="greedy"))
    assert texts(answers(tiny, PROMPTS, strategy="sample", top_k=1, temperature=1.0, seed=7)) == greedy


def test_same_seed_same_samples_and_another_seed_differs(tiny):
    one = texts(answers(tiny, PROMPTS, k=3, strategy="sample", temperature=1.5, top_k=0, top_p=1.0, seed=11))
    assert one == texts(answers(tiny, PROMPTS, k=3, strategy="sample", temperature=1.5, top_k=0, top_p=1.0, seed=11))
    assert one != texts(answers(tiny, PROMPTS, k=3, strategy="sample", temperature=1.5, top_k=0, top_p=1.0, seed=12))


def test_unset_seed_is_drawn_and_recorded(tiny):
    model, tokenizer = tiny
    clean = validate_decoding({"max_new_tokens": 4})
    assert clean["seed"] is None
    generate_answers(model, tokenizer, ["Hi"], clean, k=2, max_context=512)
    assert isinstance(clean["seed"], int)


def test_beam_search_returns_k_distinct_sequences(tiny):
    for result in answers(tiny, PROMPTS, k=3, strategy="beam", num_beams=4):
        assert len(result.texts) == 3
        assert len(set(result.texts)) == 3


def test_batched_greedy_equals_one_by_one_greedy(tiny):
    batched = texts(answers(tiny, PROMPTS, strategy="greedy", batch_size=8))
    one_by_one = [texts(answers(tiny, [p], strategy="greedy"))[0] for p in PROMPTS]
    assert batched == one_by_one


def test_token_counts_and_latency_are_recorded(tiny):
    model, tokenizer = tiny
    [result] = answers(tiny, ["Hi"], k=2, strategy="sample", seed=1)
    templated = tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], add_generation_prompt=True,
                                              tokenize=False)
    assert result.prompt_tokens == len(tokenizer(templated, add_special_tokens=False)["input_ids"])
    assert all(1 <= n <= 12 for n in result.completion_tokens)
    assert result.latency_ms > 0


def test_long_prompt_is_truncated_from_the_left_with_a_note_or_refused(tiny):
    model, tokenizer = tiny
    long_prompt = "the answer is " * 300 + "THE END"
    clean = validate_decoding({"max_new_tokens": 12, "strategy": "greedy"})
    [cut] = generate_answers(model, tokenizer, [long_prompt], dict(clean), max_context=512)
    assert cut.prompt_tokens == 500
    assert "truncated from the left" in cut.note and cut.texts
    [refused] = generate_answers(model, tokenizer, [long_prompt, "Hi"], dict(clean), max_context=512,
                                 long_prompts="refuse")[:1]
    assert refused.refused.startswith("prompt is") and refused.texts == []


def test_each_answer_records_whether_it_was_cut_at_the_token_limit(tiny):
    model, tokenizer = tiny
    [cut] = answers(tiny, ["Hi"], k=3, strategy="sample", seed=3, max_new_tokens=2)
    assert cut.finish_reasons == ["length"] * 3  # two random tokens, no end-of-sequence

    model.generation_config.forced_eos_token_id = tokenizer.eos_token_id  # the last token is always EOS
    try:
        [finished] = answers(tiny, ["Hi"], k=3, strategy="sample", seed=3, max_new_tokens=2)
    finally:
        model.generation_config.forced_eos_token_id = None
    assert finished.finish_reasons == ["stop"] * 3


def test_on_step_hears_the_batchs_new_token_count_after_each_step(tiny):
    heard = []
    model, tokenizer = tiny
    clean = validate_decoding({"max_new_tokens": 5, "strategy": "sample", "seed": 1})
    generate_answers(model, tokenizer, ["Hi", "Ho"], clean, k=2, max_context=512, on_step=heard.append)
    assert heard and heard == sorted(heard) and heard[0] == 1 and heard[-1] <= 5
