"""Loading model versions from the model store, through a per-worker cache bounded in memory.

A Celery worker keeps the policies it generated with last, so the next batch of the same
version starts at once; the cache evicts the least recently used model past a count or a byte
budget (settings MODEL_CACHE_MAX_MODELS / MODEL_CACHE_MAX_BYTES)."""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from pathlib import Path

from django.conf import settings

log = logging.getLogger(__name__)


def artifact_path(version) -> Path:
    """The version's directory: absolute as stored, or relative to settings.MODEL_STORE."""
    path = Path(version.artifact_dir).expanduser()
    return path if path.is_absolute() else Path(settings.MODEL_STORE) / path


def tokenizer_path(version) -> Path:
    """Where the version's tokenizer lives: its own, else its artifact, else (adapters) the parent's."""
    if version.tokenizer_dir:
        path = Path(version.tokenizer_dir).expanduser()
        return path if path.is_absolute() else Path(settings.MODEL_STORE) / path
    own = artifact_path(version)
    if (own / "tokenizer_config.json").exists() or (own / "tokenizer.json").exists() or version.parent_id is None:
        return own
    return tokenizer_path(version.parent)


def device() -> str:
    import torch

    wanted = getattr(settings, "GENERATION_DEVICE", "") or ""
    if wanted:
        return wanted
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_tokenizer(path):
    """A tokenizer ready for batched generation: left padding and a pad token."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path))
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        # Without a pad token batching is impossible; eos is the usual stand-in.
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model_uncached(version, *, head="causal"):
    """A fresh model for `version` (never shared): full weights, or a LoRA adapter merged over
    its parent (itself loaded the same way, so adapter chains resolve)."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    path = artifact_path(version)
    auto = AutoModelForSequenceClassification if head == "classification" else AutoModelForCausalLM
    if not version.is_adapter:
        model = auto.from_pretrained(str(path))
    else:
        from peft import PeftModel

        if version.parent_id is None:
            raise ValueError(f"Adapter version {version} has no parent to apply it to.")
        base = load_model_uncached(version.parent, head=head)
        model = PeftModel.from_pretrained(base, str(path)).merge_and_unload()
    model.eval()
    return model


def model_bytes(model) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters()) + sum(
        b.numel() * b.element_size() for b in model.buffers()
    )


class ModelCache:
    """LRU over (version id, artifact dir) -> (model, tokenizer), bounded by count and bytes."""

    def __init__(self, max_models: int, max_bytes: int):
        self.max_models = max_models
        self.max_bytes = max_bytes
        self._entries: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self):
        return len(self._entries)

    def __contains__(self, key):
        return key in self._entries

    @property
    def bytes(self) -> int:
        return sum(size for _, _, size in self._entries.values())

    def get(self, key, load):
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                model, tokenizer, _ = self._entries[key]
                return model, tokenizer
            model, tokenizer = load()
            self._entries[key] = (model, tokenizer, model_bytes(model))
            self._evict()
            return model, tokenizer

    def _evict(self):
        # Keep the entry just added even if it alone is over the byte budget.
        while len(self._entries) > 1 and (len(self._entries) > self.max_models or self.bytes > self.max_bytes):
            key, _ = self._entries.popitem(last=False)
            log.info("model cache: evicted %s", key)

    def clear(self):
        with self._lock:
            self._entries.clear()


_cache: ModelCache | None = None


def model_cache() -> ModelCache:
    """This worker's cache, sized from settings on first use."""
    global _cache
    if _cache is None:
        _cache = ModelCache(
            max_models=getattr(settings, "MODEL_CACHE_MAX_MODELS", 2),
            max_bytes=getattr(settings, "MODEL_CACHE_MAX_BYTES", 4 * 1024**3),
        )
    return _cache


def load_policy(version):
    """(model, tokenizer) for a policy version, on the generation device, from the worker's cache."""
    key = (version.pk, str(artifact_path(version)))

    def load():
        model = load_model_uncached(version).to(device())
        return model, load_tokenizer(tokenizer_path(version))

    return model_cache().get(key, load)


def context_length(model, tokenizer) -> int:
    """The longest sequence (prompt + answer) the model takes."""
    limits = [getattr(model.config, "max_position_embeddings", None)]
    model_max = getattr(tokenizer, "model_max_length", None)
    if model_max and model_max < 10**9:  # transformers' "no limit" is a huge int
        limits.append(model_max)
    limits = [limit for limit in limits if limit]
    return min(limits) if limits else 2048
