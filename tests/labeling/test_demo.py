import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.test import RequestFactory

from labeling.demo import load_demo
from labeling.demo.data import PROMPTS
from labeling.models import Candidate, ComparisonTask, Project, Prompt

pytestmark = pytest.mark.django_db


def log_in(username, password):
    """authenticate() as the login page calls it: django-axes needs the request (it locks out by address)."""
    return authenticate(RequestFactory().post("/accounts/login/"), username=username, password=password)


def counts():
    return [m.objects.count() for m in (Project, Prompt, Candidate, ComparisonTask)]


def test_load_demo_builds_both_projects_and_is_idempotent():
    call_command("load_demo")
    first = counts()
    call_command("load_demo")
    assert counts() == first
    assert not load_demo().changed

    pairwise = Project.objects.get(name="Demo: helpfulness (pairwise)")
    ranking = Project.objects.get(name="Demo: ranking")
    assert pairwise.overlap == 2 and pairwise.rating_aspects == ["helpful", "harmless", "honest"]
    assert ranking.mode == "ranking" and ranking.allow_ties and ranking.candidates_per_prompt == 3
    assert pairwise.tasks.count() == len(PROMPTS)
    assert ranking.tasks.count() == sum(len(p["answers"]) >= 3 for p in PROMPTS)
    for task in ComparisonTask.objects.prefetch_related("candidates"):
        assert task.candidates.count() == task.project.candidates_per_prompt
    for project in (pairwise, ranking):
        assert sorted(project.annotators.values_list("username", flat=True)) == ["alice", "bob"]
    assert Candidate.objects.filter(is_flagged=True).exists()

    admin = log_in("admin", "rankloop-admin")
    assert admin.is_staff and admin.is_superuser
    assert log_in("alice", "rankloop-alice") is not None
    assert log_in("bob", "rankloop-bob") is not None


def test_every_demo_task_has_the_hand_written_answers():
    load_demo()
    for task in ComparisonTask.objects.prefetch_related("candidates"):
        assert {c.external_source for c in task.candidates.all()} == {"rankloop demo"}
    assert not Candidate.objects.filter(model_version__isnull=False).exists()
