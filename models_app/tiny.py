"""A tiny random Llama with a byte-level BPE tokenizer, built on the fly in about a second.

Tests and benchmarks use it instead of downloading anything: 2 layers, hidden size 64, a
tokenizer trained on local text, the ChatML chat template and left padding (what generation
and PPO need)."""
from __future__ import annotations

import itertools
from pathlib import Path

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

_WORDS = (
    "the a an is are was be to of and in that it for on with as you do at this but his by from they we say her "
    "she or will my one all would there their what so up out if about who get which go me when make can like time "
    "no just him know take people into year your good some could them see other than then now look only come its "
    "over think also back after use two how our work first well way even new want because any these give day most "
    "us answer question model python code function return print list dict error reward policy human assistant user "
    "rank better worse helpful harmless honest sorry cannot help please thanks explain write example data train"
).split()


def training_corpus(n_lines: int = 2000):
    """Deterministic pseudo-sentences over a small vocabulary, with digits and punctuation."""
    words = itertools.cycle(_WORDS)
    for i in range(n_lines):
        length = 5 + (i * 7) % 11
        line = " ".join(next(words) for _ in range(length))
        yield f"{line.capitalize()} {i % 97}, {(i * 31) % 1000}? Yes: {line[:20]}!\n"


def build_tokenizer(vocab_size: int = 512):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tokenizer.train_from_iterator(training_corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=None, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        unk_token=None, padding_side="left", model_max_length=512,
    )
    fast.chat_template = CHATML_TEMPLATE
    return fast


def build_tiny_model(directory: str | Path, *, seed: int = 0, layers: int = 2, hidden: int = 64) -> Path:
    """Write a tiny random LlamaForCausalLM and its tokenizer into `directory`; return it."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 2,
        num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=4,
        max_position_embeddings=512, pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id, bos_token_id=None, tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=None,
    )
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
