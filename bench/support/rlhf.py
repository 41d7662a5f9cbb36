"""Shared pieces of the training benchmarks: a fresh database, a project seeded from a preference
file through the product's preference import (labeling.preference_import), and a round whose
reward stage runs in this process."""
from __future__ import annotations

import gzip
import json
import os
import time
from pathlib import Path

from .server import ROOT, recreate_postgres_database

SHARED_DATA = Path(os.environ.get("RANKLOOP_SHARED_DATA", ROOT.parent / "shared" / "data"))


def bench_env(db: str, model_store: Path) -> dict:
    if db == "sqlite":
        database_url = ""
    else:
        # RANKLOOP_BENCH_DB: another name, so benchmarks run side by side do not drop each other's
        database_url = recreate_postgres_database(os.environ.get("RANKLOOP_BENCH_DB", "rankloop_bench_rlhf"))
    return {"DATABASE_URL": database_url, "MODEL_STORE": str(model_store), "HF_HUB_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false", "TRL_EXPERIMENTAL_SILENCE": "1", "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT), "RANKLOOP_VAR_DIR": str(model_store.parent / "var")}


def link_default_model(model_store: Path) -> None:
    """Reuse the default model converted in the project's own store (var/models), if there."""
    from models_app.default_model import DEFAULT_MODEL_DIR

    converted = ROOT / "var" / "models" / DEFAULT_MODEL_DIR
    if converted.is_dir() and not (model_store / DEFAULT_MODEL_DIR).exists():
        (model_store / DEFAULT_MODEL_DIR).symlink_to(converted, target_is_directory=True)


def read_rows(path: Path, limit: int) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    rows = []
    with opener(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                rows.append(json.loads(line))
            if limit and len(rows) >= limit:
                break
    return rows


def policy_version(model: str):
    """The default policy (SmolLM2-135M, converted once into the model store) or the tiny one."""
    from django.conf import settings

    from models_app import services as models

    if model == "default":
        return models.bootstrap_default_model()
    from models_app.tiny import build_tiny_model

    path = build_tiny_model(Path(settings.MODEL_STORE) / "bench-tiny")
    return models.register_model(path, kind="policy", name="bench-tiny")


def seeded_round(rows, *, model: str, reward: dict, heldout_percent: int, policy=None):
    """Project + deployed policy + the rows imported as labelled pairs (source "import:bench"), and
    a planned round whose reward run the caller executes. Returns (round, reward_run, seconds spent
    seeding)."""
    import orjson

    from labeling import preference_import
    from labeling.models import Project
    from models_app import services as models
    from rlhf import services

    began = time.perf_counter()
    policy = policy or policy_version(model)
    project = Project.objects.create(name=f"bench-rm-{time.time_ns()}", heldout_percent=heldout_percent)
    models.deploy(project, policy, note="benchmark")
    preference_import.import_preferences(project, b"\n".join(orjson.dumps(row) for row in rows), source="bench")
    round = services.launch_round(project, user=None, algorithm="dpo", hyperparameters={"reward": reward},
                                  enqueue=False)
    return round, round.runs.get(kind="reward"), time.perf_counter() - began
