"""The generation task through a real Celery worker consuming the `gpu` queue (on Redis)."""
import time

import pytest
from django.conf import settings

from labeling.models import ComparisonTask
from models_app import services

pytestmark = [pytest.mark.celery, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def gpu_worker():
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.skip("needs CELERY_BROKER_URL on Redis (make test sets it)")
    from celery.contrib.testing.worker import start_worker

    from rankloop.celery import app

    app.conf.task_always_eager = False
    with app.connection_for_write() as connection:  # start from an empty gpu queue
        connection.default_channel.queue_purge("gpu")
    with start_worker(app, queues=["gpu"], pool="solo", perform_ping_check=False, shutdown_timeout=20):
        yield app


def wait_for(job, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.is_finished:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job still {job.status} after {seconds}s")


def test_the_task_is_routed_to_the_gpu_queue():
    from rankloop.celery import app

    route = app.amqp.router.route({}, "models_app.tasks.run_generation_job")
    assert route["queue"].name == "gpu"


def test_a_worker_generates_tasks_shows_progress_and_a_rerun_adds_nothing(
    gpu_worker, make_project, tiny_policy, make_prompts
):
    project = make_project(decoding_config={"max_new_tokens": 6, "seed": 1})
    services.deploy(project, tiny_policy)
    prompts = make_prompts(project, ["One", "Two", "Three"])

    job = wait_for(services.start_generation(project))
    assert job.status == "succeeded", job.error
    assert (job.done, job.total, job.tasks_created, job.percent) == (3, 3, 3, 100)
    assert job.celery_task_id
    assert ComparisonTask.objects.filter(project=project).count() == 3

    again = wait_for(services.start_generation(project, prompts))
    assert again.status == "succeeded" and again.done == 3 and again.tasks_created == 0
    assert ComparisonTask.objects.filter(project=project).count() == 3
