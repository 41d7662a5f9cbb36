"""Where to spend labels: the open tasks a reward model should score. The scores are written back
as each task's `uncertainty` (labeling.actions.tasks.set_uncertainty), which the claim orders by
when the project's queue order is `uncertainty` (a column in the queue's index, so the claim stays
one index scan)."""
from __future__ import annotations

from django.db.models import Prefetch

from .models import Candidate, ComparisonTask, Project


def tasks_to_score(project: Project, *, limit: int = 20_000) -> list[dict]:
    """Open, non-gold comparison tasks as {"id", "prompt", "answers"} rows (answers in id order)."""
    tasks = (ComparisonTask.objects.filter(project=project, status=ComparisonTask.Status.OPEN, is_gold=False)
             .select_related("prompt").prefetch_related(Prefetch("candidates", Candidate.objects.order_by("id")))
             .order_by("id")[:limit])
    return [{"id": t.pk, "prompt": t.prompt.messages, "answers": [c.text for c in t.candidates.all()]}
            for t in tasks if t.candidates.all().count() >= 2]

