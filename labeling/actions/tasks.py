"""Comparison tasks: creating them (over candidates, or a demonstration's prompt alone), their
place in the queue (priority, the reward model's uncertainty), closing them."""
from __future__ import annotations

from dataclasses import dataclass, field

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


@dataclass
class NewTask:
    """A task to create: its prompt, its candidates (saved, of that prompt; none in a
    demonstration project) and where it stands in the queue."""

    prompt_id: int
    candidates: list = field(default_factory=list)
    priority: int = 0
    is_gold: bool = False
    gold_ranking: list | None = None


def create_tasks(project: Project, new_tasks: list[NewTask], *, round_number=None,
                 batch_size=1000) -> list[ComparisonTask]:
    """The one way comparison tasks come to be (one task, a generation batch, a whole import):
    the tasks and their candidate links in two bulk inserts. Callers check their input first."""
    tasks = [ComparisonTask(project_id=project.pk, prompt_id=new.prompt_id, round_number=round_number,
                            overlap=ComparisonTask.GOLD_OVERLAP if new.is_gold else project.overlap,
                            is_gold=new.is_gold, gold_ranking=new.gold_ranking if new.is_gold else None,
                            priority=new.priority)
             for new in new_tasks]
    with transaction.atomic():  # the tasks and their candidates, or nothing
        ComparisonTask.objects.bulk_create(tasks, batch_size=batch_size)
        through = ComparisonTask.candidates.through
        through.objects.bulk_create([through(comparisontask_id=task.pk, candidate_id=c.pk)
                                     for task, new in zip(tasks, new_tasks) for c in new.candidates],
                                    batch_size=batch_size * 4)
    return tasks


def create_task(prompt: Prompt, candidates, *, round_number=None, is_gold=False, gold_ranking=None,
                priority=0) -> ComparisonTask:
    """A comparison task over the given candidates of one prompt. The queue serves higher
    `priority` first."""
    candidates = list(candidates)
    if len(candidates) < 2:
        raise LabelingError("A comparison task needs at least two candidates.")
    if any(c.prompt_id != prompt.pk for c in candidates):
        raise LabelingError("Every candidate of a task must answer the task's prompt.")
    if is_gold:
        check_ranking(gold_ranking, [c.pk for c in candidates], allow_ties=True)
    new = NewTask(prompt.pk, candidates, check_priority(priority), is_gold, gold_ranking)
    return create_tasks(prompt.project, [new], round_number=round_number)[0]


def create_demonstration_task(prompt: Prompt, *, priority=0) -> ComparisonTask:
    """A task of a demonstration project: the annotator writes the ideal reply to the prompt."""
    if prompt.project.mode != Project.Mode.DEMONSTRATION:
        raise LabelingError("Only a demonstration project has tasks without candidates.")
    return create_tasks(prompt.project, [NewTask(prompt.pk, priority=check_priority(priority))])[0]


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
