"""Shared fixtures. Tests run on Postgres (DATABASE_URL, set by `make test`)."""
import os
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from labeling import services
from labeling.models import Candidate, Project, Prompt

SHARED_DATA = Path(os.environ.get("RANKLOOP_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture(autouse=True)
def fresh_throttle_counts():
    """Each test starts with no throttle counts: the default cache (var/cache) is shared by the
    processes of the machine and outlives a test run."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def shared_data():
    """../shared/data, or skip: the project must pass its core tests without it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder {SHARED_DATA} is absent")
    return SHARED_DATA


@pytest.fixture
def make_user(db):
    def make(username, *, staff=False, password="pw-for-tests-123"):
        User = get_user_model()
        user = User.objects.create_user(username=username, password=password, is_staff=staff)
        return user

    return make


@pytest.fixture
def admin_user(make_user):
    return make_user("admin", staff=True)


@pytest.fixture
def annotator(make_user):
    return make_user("ann")


@pytest.fixture
def make_project(db):
    def make(name="Demo", annotators=(), **fields):
        project = Project.objects.create(name=name, **fields)
        for user in annotators:
            services.add_annotator(project, user)
        return project

    return make


@pytest.fixture
def make_tasks(db):
    """n tasks in a project, each over K fresh candidates of a fresh prompt."""

    def make(project, n, *, k=None):
        k = k or project.candidates_per_prompt
        tasks = []
        for i in range(n):
            prompt = Prompt.objects.create(project=project, messages=[{"role": "user", "content": f"Question {i}?"}])
            candidates = [Candidate.objects.create(prompt=prompt, text=f"Answer {i}.{j}") for j in range(k)]
            tasks.append(services.create_task(prompt, candidates))
        return tasks

    return make


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny random Llama + ChatML byte-level BPE tokenizer (left padding), built once per run."""
    from models_app.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))
