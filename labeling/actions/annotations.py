"""Annotations: an annotator's submit (the ranking, ratings, flags, rationale, ideal answer)."""
from __future__ import annotations

from django.db import connection, transaction
from django.utils import timezone

from .. import quality, review, sql
from ..errors import Conflict
from ..models import Annotation, Assignment, ComparisonTask
from ..queries import counted_annotations
from ..submission import clean_submission
from .assignments import locked_assignment
from .pairs import pairs_upsert


def submit_annotation(assignment_id, annotator, payload: dict, *, now=None) -> Annotation:
    """Store an annotator's ranking for their assignment and update the task's pairs.

    Idempotent: the same submit again returns the stored annotation. Refuses (and writes
    nothing) a submit on someone else's assignment, on a skipped or closed task, on a lease
    that expired and went to someone else, or a payload that does not fit the task."""
    now = now or timezone.now()
    with transaction.atomic():
        assignment = locked_assignment(assignment_id, annotator)
        project = assignment.project
        if assignment.status == Assignment.Status.SUBMITTED:
            existing = assignment.annotation
            clean = clean_submission(project, assignment.shown_order, payload)
            if clean.ranking != existing.ranking:
                raise Conflict("This task is already submitted with a different ranking; annotations are final.")
            return existing
        if assignment.status == Assignment.Status.SKIPPED:
            raise Conflict("You skipped this task; it can no longer be submitted.")
        task = assignment.task
        if task.status == ComparisonTask.Status.CLOSED:
            raise Conflict("This task is closed; it no longer takes annotations.")
        holds_slot = assignment.status == Assignment.Status.LEASED
        if not holds_slot and (task.status != ComparisonTask.Status.OPEN or task.is_full):
            raise Conflict("Your lease on this task expired and the task went to another annotator.")
        clean = clean_submission(project, assignment.shown_order, payload)
        assignment.status, assignment.finished_at = Assignment.Status.SUBMITTED, now
        task.annotations_done += 1
        if holds_slot:
            task.leased -= 1
        if task.annotations_done >= task.overlap:
            task.status, task.completed_at = ComparisonTask.Status.COMPLETE, now
        # The first annotation of a task is all there is to aggregate: no need to read any back. A gold
        # task's pairs are its known ranking, written once (every annotator answers it: reading all
        # their answers back would grow without end); the answers are scored instead.
        if task.is_gold:
            rankings = [task.gold_ranking] if task.annotations_done == 1 else []
        else:
            rankings = [clean.ranking]
            if task.annotations_done > 1:
                rankings += list(counted_annotations(project, task=task).values_list("ranking", flat=True))
        annotation_values = (assignment.pk, task.pk, annotator.pk, clean.ranking, clean.pairwise_choice,
                             clean.ratings, clean.flags, clean.rationale, clean.ideal_answer, clean.time_on_task_ms,
                             now)
        # Every write of a submit in one statement (one round trip on Postgres).
        annotation_id = sql.write_submission(assignment, task, annotation_values,
                                             pairs_upsert(task, rankings) if any(rankings) else None)
        if task.is_gold:
            quality.record_gold_answer(project, annotator, task, clean.ranking, now=now)
        elif review.wants_review(project, task, clean.flags):
            review.enqueue_after_submit(project, task, annotation_id, clean.flags, rankings)
        annotation = Annotation.from_db(connection.alias, ("id",) + sql.ANNOTATION_FIELDS,
                                        (annotation_id,) + annotation_values)
        annotation.assignment, annotation.task, annotation.annotator = assignment, task, annotator
        return annotation
