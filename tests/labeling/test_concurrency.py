"""Many annotators claim and submit at once on Postgres: no task ever exceeds its overlap."""
import random
import threading

import pytest
from django.db import connection
from django.db.models import Count

from labeling.actions.annotations import submit_annotation
from labeling.actions.assignments import assign_next, skip_task
from labeling.errors import Conflict
from labeling.models import Annotation, Assignment, ComparisonTask

pytestmark = pytest.mark.django_db(transaction=True)


def annotate_until_done(project, user, errors, done, skip_every=0):
    """Claim and rank (or, one time in `skip_every`, skip) until nothing is left; notes each
    (user, task, "submitted" | "skipped") in `done`."""
    rng = random.Random(user.pk)
    try:
        while True:
            assignment = assign_next(project, user)
            if assignment is None:
                return
            if skip_every and rng.randrange(skip_every) == 0:
                skip_task(assignment.pk, user)
                done.append((user.pk, assignment.task_id, "skipped"))
                continue
            payload = {"ranking": [[c] for c in rng.sample(assignment.shown_order, len(assignment.shown_order))]}
            submit_annotation(assignment.pk, user, payload)
            submit_annotation(assignment.pk, user, payload)  # a repeated submit changes nothing
            done.append((user.pk, assignment.task_id, "submitted"))
    except Exception as exc:  # surfaced in the main thread
        errors.append(exc)
    finally:
        connection.close()


@pytest.mark.parametrize("overlap, skip_every", [(1, 0), (3, 5)])
def test_concurrent_claims_never_exceed_overlap(make_project, make_tasks, make_user, overlap, skip_every):
    users = [make_user(f"worker{i}") for i in range(12)]
    project = make_project(annotators=users, overlap=overlap, mode="ranking", candidates_per_prompt=3)
    make_tasks(project, 40)
    errors, done = [], []
    threads = [threading.Thread(target=annotate_until_done, args=(project, u, errors, done, skip_every))
               for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    per_task = dict(Annotation.objects.values_list("task").annotate(n=Count("id")).values_list("task", "n"))
    tasks = list(ComparisonTask.objects.all())
    assert all(per_task.get(t.pk, 0) <= overlap for t in tasks)
    assert all(t.annotations_done == per_task.get(t.pk, 0) and t.leased == 0 for t in tasks)
    if not skip_every:  # with enough annotators and no skips, every task completes
        assert all(t.annotations_done == overlap for t in tasks)
    assert not Assignment.objects.filter(status=Assignment.Status.LEASED).exists()
    pairs = Annotation.objects.values("task", "annotator").annotate(n=Count("id")).filter(n__gt=1)
    assert not pairs.exists()

    # What the annotators did is what the database holds: one annotation per submitted claim, one
    # skipped assignment per skip, and a task short of its overlap only where someone skipped it (an
    # annotator stops when every task is full, leased or theirs; a lease that ends in a skip frees a
    # place nobody may come back for).
    submitted = [(user, task) for user, task, what in done if what == "submitted"]
    skipped = {(user, task) for user, task, what in done if what == "skipped"}
    assert submitted and bool(skipped) == bool(skip_every) and not set(submitted) & skipped
    assert sorted(Annotation.objects.values_list("annotator", "task")) == sorted(submitted)
    assert set(Assignment.objects.filter(status=Assignment.Status.SKIPPED).values_list("annotator", "task")) == skipped
    skipped_tasks = {task for _, task in skipped}
    for task in tasks:
        assert task.annotations_done == overlap or task.pk in skipped_tasks, task
        assert task.status == ("complete" if task.annotations_done == overlap else "open")
    assert len(submitted) == sum(t.annotations_done for t in tasks)
    if not skip_every:
        assert len(submitted) == 40 * overlap


def one_client(project, user, outcomes, errors, barrier):
    """One of an annotator's clients: next task, submit it, again; notes every 'nothing left' and
    whether a task could still be had at that moment."""
    try:
        barrier.wait(timeout=30)
        while True:
            assignment = assign_next(project, user)
            if assignment is None:
                claimable = ComparisonTask.objects.filter(
                    project=project, status="open", annotations_done__lt=1, leased=0).count()
                outcomes.append(claimable)
                if not claimable:
                    return
                continue
            # The same ranking from both clients: the second submit of a shared lease is a repeat.
            try:
                submit_annotation(assignment.pk, user, {"ranking": [[c] for c in sorted(assignment.shown_order)]})
            except Conflict:
                pass  # the other client's lease, expired meanwhile: not this test's concern
    except Exception as exc:
        errors.append(exc)
    finally:
        connection.close()


def test_two_clients_of_one_annotator_always_get_a_task_while_one_is_open(make_project, make_tasks, annotator):
    project = make_project(annotators=[annotator], overlap=1)
    make_tasks(project, 150)
    outcomes, errors, barrier = [], [], threading.Barrier(2)
    threads = [threading.Thread(target=one_client, args=(project, annotator, outcomes, errors, barrier))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    premature = [n for n in outcomes if n]
    assert not premature, f"{len(premature)} 'nothing left' answers while tasks were open: {premature}"
    assert all(t.status == "complete" and t.leased == 0 for t in ComparisonTask.objects.all())
    assert Annotation.objects.filter(annotator=annotator).count() == 150  # each task once, by one client or the other
