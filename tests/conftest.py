"""Shared fixtures. Tests run on Postgres (DATABASE_URL, set by `make test`)."""
import os
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from labeling.actions.memberships import add_annotator
from labeling.actions.tasks import create_task
from labeling.models import Candidate, Project, Prompt
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.rlhf import Worker, database_url_of

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
            add_annotator(project, user)
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
            tasks.append(create_task(prompt, candidates))
        return tasks

    return make


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny random Llama + ChatML byte-level BPE tokenizer (left padding), built once per run."""
    from models_app.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="package")  # stopped once this package's tests are done
def worker_process(django_db_setup, django_db_blocker, model_store, tmp_path_factory):
    from django.db import connection

    from rankloop.celery import app

    with django_db_blocker.unblock():
        url = database_url_of(connection)
    app.control.purge()  # leftovers of an earlier, interrupted run
    worker = Worker(url, model_store, tmp_path_factory.mktemp("worker") / "celery.log")
    yield worker
    worker.stop()


@pytest.fixture
def worker(worker_process, transactional_db):
    """A running worker (restarted if a test killed it); data is committed so it sees it."""
    return worker_process.start()


@pytest.fixture
def browser_page():
    """A page in Debian's Chromium driven by Playwright (tests using it skip where it is absent)."""
    from django.db import connections
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        page.set_default_timeout(20000)
        yield page
        browser.close()
        # The test's ORM calls ran while Playwright's loop was current, on connections of that
        # context; closed here, or the test database cannot be dropped at the end of the run.
        connections.close_all()
