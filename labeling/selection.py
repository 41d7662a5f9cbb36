"""Where to spend labels: the open tasks a reward model should score, and the scores written back
as each task's `uncertainty`, which the claim orders by when the project's queue order is
`uncertainty` (a column in the queue's index, so the claim stays one index scan)."""
from __future__ import annotations

from django.db import transaction
from django.db.models import Prefetch

from .models import Candidate, ComparisonTask, Project

BATCH = 1000


def tasks_to_score(project: Project, *, limit: int = 20_000) -> list[dict]:
    """Open, non-gold comparison tasks as {"id", "prompt", "answers"} rows (answers in id order)."""
    tasks = (ComparisonTask.objects.filter(project=project, status=ComparisonTask.Status.OPEN, is_gold=False)
             .select_related("prompt").prefetch_related(Prefetch("candidates", Candidate.objects.order_by("id")))
             .order_by("id")[:limit])
    return [{"id": t.pk, "prompt": t.prompt.messages, "answers": [c.text for c in t.candidates.all()]}
            for t in tasks if t.candidates.all().count() >= 2]


def set_uncertainty(project: Project, values: dict[int, float]) -> int:
    """Write each task's uncertainty (higher is served first; 0 is "not scored"). Tasks of other
    projects are ignored. Returns how many were written."""
    tasks = {t.pk: t for t in ComparisonTask.objects.filter(project=project, pk__in=list(values)).only("id")}
    for pk, task in tasks.items():
        task.uncertainty = float(values[pk])
    with transaction.atomic():
        ComparisonTask.objects.bulk_update(list(tasks.values()), ["uncertainty"], batch_size=BATCH)
    return len(tasks)
