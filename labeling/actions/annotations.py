"""Annotations: an annotator's submit (the ranking, ratings, flags, rationale, ideal answer)."""
from __future__ import annotations

from django.db import connection, transaction
from django.utils import timezone

from .. import quality, review, sql
from ..errors import Conflict
from ..models import Annotation, Assignment, Candidate, ComparisonTask, Prompt
from ..queries import counted_annotations
from ..submission import clean_submission
from .assignments import locked_assignment
from .candidates import add_candidates
from .pairs import aggregate_task, pairs_upsert
from .tasks import create_task


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


def record_comparison(prompt: Prompt, candidates: list[Candidate], voter, ranking: list, *, source: str,
                      pairwise_choice: str = "", rationale: str = "", shown_at=None) -> ComparisonTask:
    """A comparison a person made outside the annotator page (in the chat: which of two answers
    was better) recorded as labeling's own: the answers as candidates (new, moderated), a closed
    task of one annotation (the voter's ranking, given in candidate positions: [[0], [1]] for
    "the first is better") and its preference pairs, tagged with `source` so that export and
    round launch can filter by it. One transaction."""
    now = timezone.now()
    with transaction.atomic():
        candidates = add_candidates(prompt.project, candidates)
        task = create_task(prompt, candidates)
        ids = [[candidates[position].pk for position in group] for group in ranking]
        assignment = Assignment.objects.create(
            task=task, annotator=voter, project=prompt.project, status=Assignment.Status.SUBMITTED,
            shown_order=[c.pk for c in candidates], leased_at=shown_at or now, expires_at=now, finished_at=now)
        Annotation.objects.create(assignment=assignment, task=task, annotator=voter, ranking=ids,
                                  pairwise_choice=pairwise_choice, rationale=rationale)
        ComparisonTask.objects.filter(pk=task.pk).update(
            annotations_done=1, overlap=1, status=ComparisonTask.Status.CLOSED, completed_at=now)
        task.refresh_from_db()
        aggregate_task(task)
        task.pairs.update(source=source)
    return task
