"""Preference pairs: (re)aggregating a task's pairs from the annotations that count."""
from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from .. import sql
from ..models import ComparisonTask, PreferencePair, Project
from ..queries import counted_annotations
from ..votes import task_pair_rows


def pairs_upsert(task: ComparisonTask, rankings):
    """The upsert (sql, params) of a task's pairs, aggregated over these rankings (the submit runs
    it within its own statement)."""
    return sql.pairs_upsert(task_pair_rows(task, rankings, timezone.now()))


def aggregate_task(task: ComparisonTask) -> int:
    """Recompute the preference pairs of one task from all its annotations (a gold task's: from its
    known ranking, once answered), in one statement. Returns how many pairs."""
    if task.is_gold:
        rankings = [task.gold_ranking] if task.annotations_done else []
    else:
        rankings = list(counted_annotations(task.project, task=task).values_list("ranking", flat=True))
    if not rankings and task.adjudicated_ranking:
        rankings = [task.adjudicated_ranking]  # every annotation rejected: the reviewer's ranking stands alone
    if not any(rankings):  # nothing counts any more (all rejected; or a demonstration): no pairs
        PreferencePair.objects.filter(task=task).delete()
        return 0
    return sql.execute(pairs_upsert(task, rankings))


def reaggregate_annotator(project: Project, user) -> int:
    """Recompute the pairs of every task the user annotated in the project (after their pause or
    reinstatement changed what counts)."""
    total = 0
    with transaction.atomic():
        for task in ComparisonTask.objects.filter(project=project, is_gold=False, annotations__annotator=user) \
                .select_related("prompt", "project").distinct().iterator():
            total += aggregate_task(task)
    return total


def reaggregate_project(project: Project) -> int:
    """Recompute the pairs of every annotated task of the project. One transaction per task, so a
    large project never holds its pairs locked for the whole run."""
    total = 0
    for task in ComparisonTask.objects.filter(project=project, annotations_done__gt=0).select_related(
            "prompt", "project").iterator():
        with transaction.atomic():
            total += aggregate_task(task)
    return total
