"""Closing a task ends its live leases: next-task never hands back a lease on a closed task."""
import pytest

from labeling.actions.assignments import assign_next
from labeling.actions.tasks import close_task
from labeling.models import Assignment, ComparisonTask
from tests.support.api import token_client

pytestmark = pytest.mark.django_db


def test_it_ends_the_live_leases_of_a_closed_task(make_project, make_tasks, annotator):
    project = make_project(annotators=[annotator])
    make_tasks(project, 2)
    lease = assign_next(project, annotator)
    close_task(lease.task)
    lease.refresh_from_db()
    assert lease.status == Assignment.Status.EXPIRED and lease.finished_at is not None
    task = ComparisonTask.objects.get(pk=lease.task_id)
    assert task.status == ComparisonTask.Status.CLOSED and task.leased == 0


def test_it_serves_the_next_open_task_after_a_close_over_the_api(make_project, make_tasks, annotator, admin_user):
    project = make_project(annotators=[annotator])
    make_tasks(project, 2)
    api = token_client(annotator)
    first = api.post(f"/api/v1/projects/{project.slug}/next-task/").json()
    assert token_client(admin_user).post(f"/api/v1/tasks/{first['task']}/close/").status_code == 200
    nxt = api.post(f"/api/v1/projects/{project.slug}/next-task/")
    assert nxt.status_code == 200
    assert nxt.json()["task"] != first["task"]


def test_it_never_returns_a_lease_on_a_task_closed_behind_its_back(make_project, make_tasks, annotator):
    # Closed without the service (the admin's status field, or SQL): the stale lease is ended on the way.
    project = make_project(annotators=[annotator])
    make_tasks(project, 2)
    lease = assign_next(project, annotator)
    ComparisonTask.objects.filter(pk=lease.task_id).update(status=ComparisonTask.Status.CLOSED)
    nxt = assign_next(project, annotator)
    assert nxt is not None and nxt.task_id != lease.task_id
    lease.refresh_from_db()
    assert lease.status == Assignment.Status.EXPIRED


def test_it_answers_none_when_the_only_task_is_closed(make_project, make_tasks, annotator):
    project = make_project(annotators=[annotator])
    (task,) = make_tasks(project, 1)
    assign_next(project, annotator)
    close_task(task)
    assert assign_next(project, annotator) is None
