"""The queue serves higher priority first (then most started, then oldest), in one index scan."""
import pytest
from django.db import connection

from labeling.actions.assignments import assign_next
from labeling.actions.tasks import create_task, set_task_priority
from labeling.errors import LabelingError
from labeling.models import ComparisonTask
from labeling.sql import claim_sql

pytestmark = pytest.mark.django_db


def test_it_serves_a_newer_task_with_a_higher_priority_first(make_project, make_tasks, make_user):
    first, second = make_user("first"), make_user("second")
    project = make_project(annotators=[first, second], overlap=2)
    older = make_tasks(project, 3)
    assert assign_next(project, first).task_id == older[0].pk  # now started: first in line
    (urgent,) = make_tasks(project, 1)
    set_task_priority(urgent, 5)
    assert assign_next(project, second).task_id == urgent.pk


def test_it_serves_lower_priority_after_the_default(make_project, make_tasks, annotator):
    project = make_project(annotators=[annotator])
    later, normal = make_tasks(project, 2)
    set_task_priority(later, -1)
    assert assign_next(project, annotator).task_id == normal.pk


def test_it_creates_a_task_with_a_priority(make_project, make_tasks, annotator):
    project = make_project(annotators=[annotator])
    make_tasks(project, 2)
    (task,) = make_tasks(project, 1)
    prompt = task.prompt
    urgent = create_task(prompt, list(task.candidates.all()), priority=3)
    assert urgent.priority == 3
    assert assign_next(project, annotator).task_id == urgent.pk


@pytest.mark.parametrize("bad", [1.5, True, "3", 40000, None])
def test_it_refuses_a_priority_that_is_not_a_smallint(make_project, make_tasks, bad):
    (task,) = make_tasks(make_project(), 1)
    with pytest.raises(LabelingError, match="priority"):
        set_task_priority(task, bad)


def test_it_claims_in_one_index_scan(make_project, make_tasks, annotator):
    project = make_project(annotators=[annotator])
    make_tasks(project, 30)
    ComparisonTask.objects.filter(project=project).update(priority=1)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE labeling_comparisontask")
        cursor.execute("SET LOCAL enable_seqscan = off")  # a tiny table: judge the plan, not the size
        cursor.execute("EXPLAIN " + claim_sql(), [project.pk, annotator.pk, annotator.pk, project.pk])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "task_queue_idx" in plan, plan
    assert "Sort" not in plan, plan
