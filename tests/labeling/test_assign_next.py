from datetime import timedelta

import pytest
from django.utils import timezone

from labeling.actions.annotations import submit_annotation
from labeling.actions.assignments import assign_next, reclaim_expired_leases, skip_task
from labeling.errors import Conflict, NotAllowed
from labeling.models import Assignment, ComparisonTask


@pytest.fixture
def three(make_user):
    return [make_user(f"a{i}") for i in range(3)]


def test_returns_none_when_project_is_empty(make_project, annotator):
    project = make_project(annotators=[annotator])
    assert assign_next(project, annotator) is None


def test_non_member_is_refused(make_project, make_tasks, annotator):
    project = make_project()
    make_tasks(project, 1)
    with pytest.raises(NotAllowed):
        assign_next(project, annotator)


def test_returning_annotator_gets_their_lease_back(make_project, make_tasks, annotator):
    project = make_project(annotators=[annotator])
    make_tasks(project, 3)
    first = assign_next(project, annotator)
    again = assign_next(project, annotator)
    assert again.pk == first.pk
    assert ComparisonTask.objects.get(pk=first.task_id).leased == 1


def test_overlap_is_never_exceeded_and_no_task_twice(make_project, make_tasks, three):
    project = make_project(annotators=three, overlap=2)
    make_tasks(project, 2)
    seen = {u.pk: set() for u in three}
    for _ in range(2):
        for user in three:
            a = assign_next(project, user)
            if a is None:
                continue
            assert a.task_id not in seen[user.pk]
            seen[user.pk].add(a.task_id)
            submit_annotation(a.pk, user, {"choice": "a"})
    for task in ComparisonTask.objects.all():
        assert task.annotations_done == 2 and task.leased == 0
        assert task.status == ComparisonTask.Status.COMPLETE
    assert all(assign_next(project, u) is None for u in three)


def test_started_tasks_come_first(make_project, make_tasks, three):
    project = make_project(annotators=three, overlap=2)
    tasks = make_tasks(project, 3)
    a0 = assign_next(project, three[0])
    a1 = assign_next(project, three[1])
    assert a0.task_id == tasks[0].pk
    assert a1.task_id == tasks[0].pk  # the started task before the fresh ones


def test_expired_lease_is_reclaimed_for_others(make_project, make_tasks, three):
    project = make_project(annotators=three, overlap=1, lease_seconds=60)
    make_tasks(project, 1)
    first = assign_next(project, three[0])
    assert assign_next(project, three[1]) is None
    later = timezone.now() + timedelta(seconds=120)
    second = assign_next(project, three[1], now=later)
    assert second is not None and second.task_id == first.task_id
    first.refresh_from_db()
    assert first.status == Assignment.Status.EXPIRED
    with pytest.raises(Conflict, match="expired"):
        submit_annotation(first.pk, three[0], {"choice": "a"}, now=later)
    assert ComparisonTask.objects.get(pk=first.task_id).leased == 1


def test_expired_but_unclaimed_lease_can_still_submit(make_project, make_tasks, three):
    project = make_project(annotators=three, overlap=1, lease_seconds=60)
    make_tasks(project, 1)
    first = assign_next(project, three[0])
    later = timezone.now() + timedelta(seconds=120)
    assert reclaim_expired_leases(now=later) == 1
    annotation = submit_annotation(first.pk, three[0], {"choice": "b"}, now=later)
    assert annotation.task.annotations_done == 1


def test_skip_releases_the_task_to_others_only(make_project, make_tasks, three):
    project = make_project(annotators=three, overlap=1)
    make_tasks(project, 1)
    a = assign_next(project, three[0])
    skip_task(a.pk, three[0])
    assert assign_next(project, three[0]) is None
    b = assign_next(project, three[1])
    assert b.task_id == a.task_id
