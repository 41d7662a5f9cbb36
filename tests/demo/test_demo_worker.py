"""make demo, end to end with a real worker: the hand-written tasks first, then the worker's
model-written tasks beside them, with the job's progress on the project pages."""
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse

from labeling.models import Candidate, ComparisonTask, Project
from models_app import services
from models_app.default_model import DEFAULT_MODEL_NAME
from models_app.models import GenerationJob
from tests.support.rlhf import wait_for

pytestmark = [pytest.mark.celery, pytest.mark.slow]


def test_the_worker_writes_the_demo_answers_as_more_tasks_beside_the_hand_written_ones(worker, monkeypatch, client):
    monkeypatch.setattr("models_app.demo.DEMO_DECODING", {"strategy": "sample", "max_new_tokens": 16, "seed": 7})
    call_command("load_demo", "--generate")
    hand_written = {p.pk: p.tasks.count() for p in Project.objects.all()}
    assert ComparisonTask.objects.count() == sum(hand_written.values()) > 0

    jobs = wait_for(lambda: all(j.is_finished for j in GenerationJob.objects.all()) and GenerationJob.objects.all(),
                    timeout=300, what="the demo's generation jobs to finish")
    assert [j.status for j in jobs] == ["succeeded", "succeeded"], [j.error for j in jobs]

    for project in Project.objects.all():
        assert services.deployed_policy(project).name == DEFAULT_MODEL_NAME
        for prompt in project.prompts.all():
            tasks = list(prompt.tasks.prefetch_related("candidates__model_version"))
            origins = sorted({c.origin for t in tasks for c in t.candidates.all()})
            assert origins == [DEFAULT_MODEL_NAME, "rankloop demo"], prompt
            model_task = next(t for t in tasks if t.candidates.first().model_version_id)
            assert model_task.candidates.count() == project.candidates_per_prompt
    written = Candidate.objects.filter(model_version__name=DEFAULT_MODEL_NAME)
    assert written.exists() and all(c.decoding["finish_reason"] in ("stop", "length") for c in written)

    # The staff page's generation panel says what the model wrote.
    client.force_login(get_user_model().objects.get(username="admin"))
    project = Project.objects.order_by("id").first()
    panel = client.get(reverse("models_app:project_jobs", args=[project.slug])).content.decode()
    assert "Succeeded" in panel and f"{DEFAULT_MODEL_NAME}" in panel and "No generation yet" not in panel

    # Everything answered: a re-run queues nothing, and says so.
    out = StringIO()
    call_command("load_demo", "--generate", stdout=out)
    assert GenerationJob.objects.count() == 2
    assert "has answered every demo prompt already" in out.getvalue()


def test_the_worker_log_has_no_progress_bars(worker):
    """Its stderr is its log: a tqdm bar there is a WARNING line per refresh (runs after the test above)."""
    log = Path(worker.log_path).read_text()
    assert "Loading weights" not in log and "it/s]" not in log
