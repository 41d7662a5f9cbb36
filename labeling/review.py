"""Review and adjudication: what goes into a project's review queue (a random share of annotations,
every annotation that flags an answer, every completed task whose annotators disagree), the
reviewer's decisions (accept; reject with a note, so the annotation no longer counts; record the
final ranking, which overrides the majority when the task's pairs are aggregated), and what an
annotator may read back (the notes on their own rejected work, nobody else's)."""
from __future__ import annotations

import random

from django.db import transaction
from django.utils import timezone

from .actions.pairs import aggregate_task
from .errors import Conflict, InvalidSubmission, LabelingError, NotAllowed, NotFound
from .models import Annotation, ComparisonTask, Membership, Project, ReviewItem
from .submission import check_ranking, clean_demonstration, text_problem
from .votes import majority, pair_votes

NOTE_MAX_CHARS = 5000
DECISIONS = ("accept", "reject", "adjudicate", "edit")


def may_review(project: Project, user) -> bool:
    """Staff, or an active member of the project with the reviewer role."""
    if not user.is_authenticated:
        return False
    return user.is_staff or Membership.objects.filter(
        project=project, user=user, is_active=True, role=Membership.Role.REVIEWER).exists()


def _check_reviewer(project, user):
    if not may_review(project, user):
        raise NotAllowed("Only this project's reviewers and staff review its annotations.")


def wants_review(project: Project, task: ComparisonTask, flags) -> bool:
    """Cheap test on the submit path: could this submit put anything in the queue?"""
    return not task.is_gold and bool(
        flags or project.review_share or (project.review_agreement_below is not None
                                          and task.status == ComparisonTask.Status.COMPLETE))


def enqueue_after_submit(project: Project, task: ComparisonTask, annotation_id: int, flags, rankings) -> None:
    """Inside the submit's transaction: the annotation goes to review when it flags an answer or is
    sampled (review_share); a task that just completed goes when a pair's agreement is under
    review_agreement_below."""
    items = []
    if flags:
        items.append(ReviewItem(project=project, task=task, annotation_id=annotation_id,
                                reason=ReviewItem.Reason.FLAGGED))
    elif project.review_share and random.random() < project.review_share:
        items.append(ReviewItem(project=project, task=task, annotation_id=annotation_id,
                                reason=ReviewItem.Reason.SAMPLED))
    threshold = project.review_agreement_below
    if threshold is not None and task.status == ComparisonTask.Status.COMPLETE and len(rankings) >= 2:
        if any(majority(*votes)[1] < threshold for votes in pair_votes(rankings).values()):
            items.append(ReviewItem(project=project, task=task, reason=ReviewItem.Reason.LOW_AGREEMENT))
    if items:
        ReviewItem.objects.bulk_create(items, ignore_conflicts=True)


def next_item(project: Project, reviewer) -> ReviewItem | None:
    """The oldest open item the reviewer may decide (never a review of their own annotation)."""
    _check_reviewer(project, reviewer)
    return (ReviewItem.objects.filter(project=project, status=ReviewItem.Status.OPEN)
            .exclude(annotation__annotator=reviewer)
            .select_related("task__prompt", "annotation__annotator", "annotation__assignment").first())


def open_count(project: Project) -> int:
    return ReviewItem.objects.filter(project=project, status=ReviewItem.Status.OPEN).count()


def decide(item_id, reviewer, *, decision, note="", ranking=None, text=None, now=None) -> ReviewItem:
    """Record a reviewer's decision on an open item, all or nothing: accept; reject (with a note);
    adjudicate (a comparison task's final ranking); edit (a demonstration's reply, rewritten as
    `text`, the original kept). Repeating the same decision returns the item; a different one on a
    decided item is a conflict."""
    try:
        item_id = int(item_id)
    except (TypeError, ValueError):
        raise NotFound("No such review item.") from None
    errors = {}
    if decision not in DECISIONS:
        errors["decision"] = f"One of {', '.join(DECISIONS)}."
    if not isinstance(note, str):
        errors["note"] = "Text."
    elif len(note) > NOTE_MAX_CHARS:
        errors["note"] = f"At most {NOTE_MAX_CHARS} characters."
    elif problem := text_problem(note):
        errors["note"] = problem
    if errors:
        raise InvalidSubmission("The decision is not valid.", errors)
    now = now or timezone.now()
    with transaction.atomic():
        item = (ReviewItem.objects.select_for_update(of=("self",))
                .select_related("project", "task__prompt", "annotation")
                .filter(pk=item_id).first())
        if item is None:
            raise NotFound("No such review item.")
        _check_reviewer(item.project, reviewer)
        if item.annotation is not None and item.annotation.annotator_id == reviewer.pk:
            raise NotAllowed("You cannot review your own annotation.")
        status = {"accept": ReviewItem.Status.ACCEPTED, "reject": ReviewItem.Status.REJECTED,
                  "adjudicate": ReviewItem.Status.ADJUDICATED, "edit": ReviewItem.Status.EDITED}[decision]
        is_demonstration = item.project.mode == Project.Mode.DEMONSTRATION
        if decision == "adjudicate" and is_demonstration:
            raise InvalidSubmission("A demonstration has no ranking: edit the reply instead.",
                                    {"decision": "Accept, reject or edit."})
        if decision == "edit":
            if not is_demonstration or item.annotation is None:
                raise InvalidSubmission("Only a demonstration's reply can be edited.", {"decision": "Not here."})
            edited = clean_demonstration({"ideal_answer": text})  # the same rules as the annotator's
            text = edited.ideal_answer
        if decision == "reject" and not note.strip():
            raise InvalidSubmission("Say why it is rejected: the annotator reads the note.",
                                    {"note": "Required when rejecting."})
        if decision == "reject" and item.annotation is None:
            raise InvalidSubmission("A disagreement is settled with the final ranking, not rejected.",
                                    {"decision": "Accept, or record the final ranking."})
        final = None
        if decision == "adjudicate":
            shown = sorted(item.task.candidates.values_list("id", flat=True))
            try:
                final = check_ranking(ranking, shown, allow_ties=item.project.allow_ties)
            except LabelingError as exc:
                raise InvalidSubmission("The final ranking is not valid.", {"ranking": exc.message}) from exc
        if item.status != ReviewItem.Status.OPEN:
            if item.status == status and (final is None or final == item.final_ranking):
                return item
            raise Conflict(f"This item is already decided ({item.get_status_display().lower()}).")
        item.status, item.reviewer, item.note, item.final_ranking, item.reviewed_at = status, reviewer, note, final, now
        if decision == "edit":
            item.original_text = item.annotation.ideal_answer
            Annotation.objects.filter(pk=item.annotation_id).update(ideal_answer=text)
        item.save(update_fields=["status", "reviewer", "note", "final_ranking", "original_text", "reviewed_at"])
        if decision == "edit":
            return item
        task = ComparisonTask.objects.select_for_update(of=("self",)).select_related("prompt", "project").get(
            pk=item.task_id)
        if decision == "reject":
            Annotation.objects.filter(pk=item.annotation_id).update(is_rejected=True)
        elif decision == "adjudicate":
            task.adjudicated_ranking = final
            task.save(update_fields=["adjudicated_ranking"])
        if decision != "accept":
            aggregate_task(task)
        return item


def item_annotations(item: ReviewItem) -> list[Annotation]:
    """What a reviewer judges: the item's annotation, or every counted annotation of its task."""
    if item.annotation_id:
        return [item.annotation]
    return list(item.task.annotations.filter(is_rejected=False).select_related("annotator"))


def rejected_work(project: Project, annotator) -> list[ReviewItem]:
    """The annotator's own rejected annotations in this project, with the reviewers' notes."""
    return list(ReviewItem.objects.filter(project=project, annotation__annotator=annotator,
                                          status=ReviewItem.Status.REJECTED)
                .select_related("task__prompt").order_by("-reviewed_at")[:50])
