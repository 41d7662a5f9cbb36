"""Score a project's open tasks with its latest reward model (and the one before, to find where
they disagree), in a subprocess that runs rlhf/training/score.py, so the worker never holds a
model; the scores become the tasks' uncertainty (labeling.selection)."""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml
from django.conf import settings

from labeling import selection
from labeling.actions.tasks import set_uncertainty
from labeling.models import Project
from rankloop.errors import Conflict

from .models import Round

SCRIPT = Path(__file__).resolve().parent / "training" / "score.py"


class NoRewardModel(Conflict):
    """The project has no trained reward model to score its tasks with."""

    code = "no_reward_model"


def reward_models(project: Project):
    """(latest, previous) reward model versions of the project's rounds; previous may be None."""
    versions = [r.reward_model for r in Round.objects.filter(project=project, reward_model__isnull=False)
                .select_related("reward_model").order_by("-number")[:2]]
    if not versions:
        raise NoRewardModel(f"Project {project.slug} has no reward model yet: train a round first.")
    return versions[0], versions[1] if len(versions) > 1 else None


def score_open_tasks(project: Project, *, timeout_s: int = 3600) -> int:
    """Score every open task and write its uncertainty. Returns how many tasks were scored."""
    from models_app.loading import artifact_path

    latest, previous = reward_models(project)
    rows = selection.tasks_to_score(project)
    if not rows:
        return 0
    folder = Path(tempfile.mkdtemp(prefix=f"uncertainty-{project.pk}-", dir=settings.VAR_DIR))
    tasks_file, output_file = folder / "tasks.jsonl", folder / "scores.jsonl"
    tasks_file.write_text("".join(json.dumps(row) + "\n" for row in rows))
    config = {"reward_model_path": str(artifact_path(latest)), "tasks_file": str(tasks_file),
              "output_file": str(output_file)}
    if previous is not None:
        config["reward_model_path_previous"] = str(artifact_path(previous))
    (folder / "score.yaml").write_text(yaml.safe_dump(config))
    done = subprocess.run([sys.executable, str(SCRIPT), "--config", str(folder / "score.yaml")],
                          capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0:
        raise RuntimeError("scoring failed: " + "\n".join(done.stderr.strip().splitlines()[-5:]))
    values = {row["id"]: row["uncertainty"] for row in map(json.loads, output_file.read_text().splitlines())}
    return set_uncertainty(project, values)
