"""Comparison tasks: creating them (over candidates, or a demonstration's prompt alone), their
place in the queue (priority, the reward model's uncertainty), closing them."""
from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from ..errors import LabelingError
from ..models import PRIORITY_RANGE, Assignment, ComparisonTask, Project, Prompt
from ..submission import check_ranking


def check_priority(value) -> int:
    """A task priority as given (an integer in PRIORITY_RANGE), or LabelingError."""
    low, high = PRIORITY_RANGE
    if type(value) is not int or not low <= value <= high:
        raise LabelingError(f"The priority must be a whole number from {low} to {high}.",
                            {"priority": f"A whole number from {low} to {high}."})
    return value


def create_task(prompt: Prompt, candidates, *, round_number=None, is_gold=False, gold_ranking=None,
                priority=0) -> ComparisonTask:
    """A comparison task over the given candidates of one prompt. The queue serves higher
    `priority` first."""
    candidates = list(candidates)
    project = prompt.project
    if len(candidates) < 2:
        raise LabelingError("A comparison task needs at least two candidates.")
    if any(c.prompt_id != prompt.pk for c in candidates):
        raise LabelingError("Every candidate of a task must answer the task's prompt.")
    if is_gold:
        check_ranking(gold_ranking, [c.pk for c in candidates], allow_ties=True)
    priority = check_priority(priority)
    with transaction.atomic():  # the task and its candidates, or nothing
        task = ComparisonTask.objects.create(
            project=project, prompt=prompt, round_number=round_number,
            overlap=ComparisonTask.GOLD_OVERLAP if is_gold else project.overlap,
            is_gold=is_gold, gold_ranking=gold_ranking if is_gold else None, priority=priority,
        )
        task.candidates.set(candidates)
    return task


def create_demonstration_task(prompt: Prompt, *, priority=0) -> ComparisonTask:
    """A task of a demonstration project: the annotator writes the ideal reply to the prompt."""
    if prompt.project.mode != Project.Mode.DEMONSTRATION:
        raise LabelingError("Only a demonstration project has tasks without candidates.")
    return ComparisonTask.objects.create(project=prompt.project, prompt=prompt, overlap=prompt.project.overlap,
                                         priority=check_priority(priority))


def set_task_priority(task: ComparisonTask, priority) -> ComparisonTask:
    """Where the task stands in its project's queue: higher priority is served first."""
    task.priority = check_priority(priority)
    ComparisonTask.objects.filter(pk=task.pk).update(priority=task.priority)
    return task


UNCERTAINTY_BATCH = 1000


def set_uncertainty(project: Project, values: dict[int, float]) -> int:
    """Write each task's uncertainty (higher is served first; 0 is "not scored"). Tasks of other
    projects are ignored. Returns how many were written."""
    tasks = {t.pk: t for t in ComparisonTask.objects.filter(project=project, pk__in=list(values)).only("id")}
    for pk, task in tasks.items():
        task.uncertainty = float(values[pk])
    with transaction.atomic():
        ComparisonTask.objects.bulk_update(list(tasks.values()), ["uncertainty"], batch_size=UNCERTAINTY_BATCH)
    return len(tasks)


def close_task(task: ComparisonTask, *, now=None) -> None:
    """Stop handing out a task: its live leases end (expired, their slots given back) and can
    no longer be submitted; the annotators who held them get other tasks."""
    now = now or timezone.now()
    with transaction.atomic():
        # The leases first, then the task: the order submit and skip lock them in.
        list(Assignment.objects.select_for_update().filter(task_id=task.pk, status=Assignment.Status.LEASED)
             .values_list("id"))
        ComparisonTask.objects.filter(pk=task.pk).update(status=ComparisonTask.Status.CLOSED, leased=0)
        # Again: a claim that committed while we waited for the task row may have added one.
        Assignment.objects.filter(task_id=task.pk, status=Assignment.Status.LEASED).update(
            status=Assignment.Status.EXPIRED, finished_at=now)
