"""Write a Hugging Face Llama directory (the tiny test model) as a GGUF file with the `gguf`
package, the way llama.cpp's converter lays it out, so the conversion path can be tested
without the 93 MB wheel."""
import json
from pathlib import Path


def _permute(weights, n_head):
    # llama.cpp stores q/k rows interleaved for its rotary layout; transformers undoes this on load.
    return (
        weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def write_llama_gguf(model_dir, gguf_path) -> Path:
    import gguf
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    model_dir, gguf_path = Path(model_dir), Path(gguf_path)
    config = AutoConfig.from_pretrained(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    state = {name: tensor.detach().numpy() for name, tensor in model.state_dict().items()}

    writer = gguf.GGUFWriter(str(gguf_path), "llama")
    writer.add_name("tiny-llama")
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_rope_dimension_count(config.hidden_size // config.num_attention_heads)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_rope_freq_base(float(getattr(config, "rope_theta", None) or config.rope_parameters["rope_theta"]))
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)

    vocab = tokenizer.get_vocab()
    tokens = [token for token, _ in sorted(vocab.items(), key=lambda item: item[1])]
    special = {t.content for t in tokenizer.added_tokens_decoder.values()}
    merges = json.loads(tokenizer.backend_tokenizer.to_str())["model"]["merges"]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types([gguf.TokenType.CONTROL if t in special else gguf.TokenType.NORMAL for t in tokens])
    writer.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in merges])
    writer.add_eos_token_id(tokenizer.eos_token_id)
    writer.add_pad_token_id(tokenizer.eos_token_id)  # as many GGUF files do; conversion must fix it
    writer.add_chat_template(tokenizer.chat_template)

    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
    writer.add_tensor("token_embd.weight", state["model.embed_tokens.weight"])
    writer.add_tensor("output_norm.weight", state["model.norm.weight"])
    writer.add_tensor("output.weight", state["lm_head.weight"])
    for layer in range(config.num_hidden_layers):
        hf, gg = f"model.layers.{layer}.", f"blk.{layer}."
        writer.add_tensor(gg + "attn_norm.weight", state[hf + "input_layernorm.weight"])
        writer.add_tensor(gg + "attn_q.weight", _permute(state[hf + "self_attn.q_proj.weight"], heads))
        writer.add_tensor(gg + "attn_k.weight", _permute(state[hf + "self_attn.k_proj.weight"], kv_heads))
        writer.add_tensor(gg + "attn_v.weight", state[hf + "self_attn.v_proj.weight"])
        writer.add_tensor(gg + "attn_output.weight", state[hf + "self_attn.o_proj.weight"])
        writer.add_tensor(gg + "ffn_norm.weight", state[hf + "post_attention_layernorm.weight"])
        writer.add_tensor(gg + "ffn_gate.weight", state[hf + "mlp.gate_proj.weight"])
        writer.add_tensor(gg + "ffn_up.weight", state[hf + "mlp.up_proj.weight"])
        writer.add_tensor(gg + "ffn_down.weight", state[hf + "mlp.down_proj.weight"])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return gguf_path
