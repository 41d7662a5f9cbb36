"""Label quality: gold tasks scored against the annotator, the project's quality gates (a
qualification set before real work, an automatic pause when gold accuracy falls below the
project's threshold), staff reinstating a paused annotator, and each annotator's figures for the
staff page and the API (gold accuracy with a Wilson interval, leave-one-out agreement with the
other annotators, skip rate, time on task).

The gate counters live on the membership (the gates' window: since joining or the last
reinstatement), so the claim decides with the row it already reads; the figures are computed
from the annotations themselves."""
from __future__ import annotations

import itertools
import statistics
from collections import defaultdict
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from . import sql
from .models import Annotation, Assignment, ComparisonTask, Membership, Project

# A time on task under this share of the project's median reads as too fast to have read the answers.
TOO_FAST_SHARE = 0.25


@dataclass(frozen=True)
class MemberState:
    """What the claim needs to know about an annotator's standing in a project."""
    paused_reason: str = ""
    qualified: bool = True
    gate_gold_done: int = 0

    @classmethod
    def of(cls, project: Project, membership_row) -> MemberState:
        """From (paused_at, paused_reason, qualified_at, gate_gold_done), or None for no membership
        (staff labeling a project they are not a member of: no gates)."""
        if membership_row is None:
            return cls()
        paused_at, reason, qualified_at, done = membership_row
        return cls(paused_reason=(reason or "Paused by staff.") if paused_at else "",
                   qualified=project.qualification_tasks == 0 or qualified_at is not None, gate_gold_done=done)


def member_state(project: Project, user) -> MemberState:
    remembered = project.__dict__.get("_member_states", {}).get(user.pk)
    if remembered is not None:
        return remembered
    row = (Membership.objects.filter(project=project, user=user, is_active=True)
           .values_list("paused_at", "paused_reason", "qualified_at", "gate_gold_done").first())
    return MemberState.of(project, row)


def gold_agrees(ranking, gold_ranking) -> bool:
    """The annotator's ranking (tiers of candidate ids, best first) orders every pair that the gold
    ranking orders strictly the same way; pairs gold ties are not scored."""
    gold_rank = {cid: i for i, tier in enumerate(gold_ranking or []) for cid in tier}
    rank = {cid: i for i, tier in enumerate(ranking or []) for cid in tier}
    for a, b in itertools.combinations(sorted(gold_rank), 2):
        if gold_rank[a] == gold_rank[b]:
            continue
        if a not in rank or b not in rank or (rank[a] < rank[b]) != (gold_rank[a] < gold_rank[b]) \
                or rank[a] == rank[b]:
            return False
    return True


def _percent(x: float) -> str:
    return f"{100 * x:.0f}%"


# --- actions --------------------------------------------------------------------------------


def record_gold_answer(project: Project, annotator, task: ComparisonTask, ranking, *, now=None) -> bool:
    """Count a submitted gold answer in the annotator's gate window, then apply the gates: the
    qualification is passed or failed once its gold tasks are answered; afterwards the accuracy
    gate pauses an annotator below gold_min_accuracy after gold_min_tasks gold answers. Runs inside
    the submit's transaction. Returns whether the answer was right."""
    correct = gold_agrees(ranking, task.gold_ranking)
    # One statement (a submit of every annotator may run this): count, and read the window back.
    row = sql.count_gold_answer(project, annotator, correct)
    if row is None:  # staff without a membership: scored in the figures, no gates
        return correct
    done, right, qualified_at = row
    if project.qualification_tasks and qualified_at is None:
        if done >= project.qualification_tasks:
            if right / done >= project.qualification_pass:
                Membership.objects.filter(project=project, user=annotator).update(qualified_at=now or timezone.now())
            else:
                pause_annotator(project, annotator, reason=(
                    f"You did not pass this project's qualification: {right} of {done} gold tasks right "
                    f"({_percent(right / done)}); the pass mark is {_percent(project.qualification_pass)}. "
                    "Staff can reinstate you."), now=now)
        return correct
    if project.gold_min_accuracy is not None and done >= project.gold_min_tasks \
            and right / done < project.gold_min_accuracy:
        pause_annotator(project, annotator, reason=(
            f"Paused: your accuracy on gold tasks is {_percent(right / done)} ({right} of {done}), below this "
            f"project's {_percent(project.gold_min_accuracy)}. Staff can reinstate you."), now=now)
    return correct


def pause_annotator(project: Project, user, *, reason: str, now=None) -> None:
    """The annotator gets no more tasks here until staff reinstate them; their live leases end."""
    from .actions.assignments import end_leases
    from .actions.pairs import reaggregate_annotator

    now = now or timezone.now()
    with transaction.atomic():
        Membership.objects.filter(project=project, user=user).update(paused_at=now, paused_reason=reason)
        leases = Assignment.objects.select_for_update().filter(
            project=project, annotator=user, status=Assignment.Status.LEASED)
        end_leases(list(leases.order_by("id").values_list("id", "task_id")), now)
        if project.exclude_paused_labels:
            reaggregate_annotator(project, user)  # their labels leave the pairs at once


def reinstate_annotator(project: Project, user, *, now=None) -> bool:
    """Staff lift a pause: the gates start a new window (a failed qualification counts as passed).
    False when the annotator was not paused."""
    from .actions.pairs import reaggregate_annotator

    now = now or timezone.now()
    with transaction.atomic():
        lifted = bool(Membership.objects.filter(project=project, user=user, paused_at__isnull=False).update(
            paused_at=None, paused_reason="", gate_gold_done=0, gate_gold_correct=0, qualified_at=now))
        if lifted and project.exclude_paused_labels:
            reaggregate_annotator(project, user)  # their labels count again
    return lifted


# --- figures ---------------------------------------------------------------------------------


def wilson(successes: int, trials: int, confidence: float = 0.95) -> tuple[float | None, float | None]:
    if not trials:
        return None, None
    from scipy.stats import binomtest

    ci = binomtest(successes, trials).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def _strict_pairs(ranking):
    """{(a, b): +1 if a above b, -1 if below, 0 tie} over a ranking's pairs (a < b)."""
    rank = {cid: i for i, tier in enumerate(ranking or []) for cid in tier}
    return {(a, b): (rank[a] < rank[b]) - (rank[a] > rank[b]) for a, b in itertools.combinations(sorted(rank), 2)}


def annotator_quality(project: Project) -> list[dict]:
    """One row per annotator who worked on the project: gold accuracy (tasks right of gold answered,
    Wilson 95% interval), agreement with the others (share of their pair votes on shared
    non-gold tasks that match the majority of the other annotators, leave-one-out; pairs the
    others split evenly are not counted), skip rate, time on task (median, and answers under a
    quarter of the project's median), and the pause or qualification standing."""
    annotations = list(Annotation.objects.filter(task__project=project)
                       .values_list("annotator_id", "annotator__username", "task_id", "task__is_gold",
                                    "task__gold_ranking", "ranking", "time_on_task_ms"))
    by_task = defaultdict(list)
    rows = defaultdict(lambda: {"gold_done": 0, "gold_correct": 0, "agree": 0, "compared": 0, "times": [],
                                "submitted": 0})
    names = {}
    for annotator_id, username, task_id, is_gold, gold_ranking, ranking, time_ms in annotations:
        names[annotator_id] = username
        row = rows[annotator_id]
        row["submitted"] += 1
        if time_ms:
            row["times"].append(time_ms)
        if is_gold:
            row["gold_done"] += 1
            row["gold_correct"] += gold_agrees(ranking, gold_ranking)
        else:
            by_task[task_id].append((annotator_id, _strict_pairs(ranking)))
    for votes in by_task.values():
        if len(votes) < 2:
            continue
        for annotator_id, mine in votes:
            for pair, vote in mine.items():
                others = sum(theirs.get(pair, 0) for other, theirs in votes if other != annotator_id)
                if others == 0:
                    continue  # the others split evenly (or tie): no majority to agree with
                rows[annotator_id]["compared"] += 1
                rows[annotator_id]["agree"] += (vote > 0) == (others > 0) and vote != 0
    skipped = dict(Assignment.objects.filter(project=project, status=Assignment.Status.SKIPPED)
                   .values("annotator_id").annotate(n=Count("id")).values_list("annotator_id", "n"))
    for annotator_id, username in (Assignment.objects.filter(project=project, annotator_id__in=list(skipped))
                                   .values_list("annotator_id", "annotator__username").distinct()):
        names.setdefault(annotator_id, username)
    all_times = [t for row in rows.values() for t in row["times"]]
    project_median = statistics.median(all_times) if all_times else None
    standing = {m.user_id: m for m in Membership.objects.filter(project=project)}
    result = []
    for annotator_id in sorted(names, key=lambda pk: names[pk]):
        row = rows[annotator_id]
        low, high = wilson(row["gold_correct"], row["gold_done"])
        n_skipped = skipped.get(annotator_id, 0)
        finished = row["submitted"] + n_skipped
        membership = standing.get(annotator_id)
        result.append({
            "annotator": names[annotator_id], "annotations": row["submitted"],
            "gold_answered": row["gold_done"], "gold_correct": row["gold_correct"],
            "gold_accuracy": row["gold_correct"] / row["gold_done"] if row["gold_done"] else None,
            "gold_accuracy_ci_low": low, "gold_accuracy_ci_high": high,
            "agreement": row["agree"] / row["compared"] if row["compared"] else None,
            "agreement_pairs": row["compared"],
            "skipped": n_skipped, "skip_rate": n_skipped / finished if finished else None,
            "median_time_ms": statistics.median(row["times"]) if row["times"] else None,
            "too_fast": sum(t < TOO_FAST_SHARE * project_median for t in row["times"]) if project_median else 0,
            "paused": bool(membership and membership.paused_at),
            "paused_reason": membership.paused_reason if membership and membership.paused_at else "",
            "qualified": bool(membership and (project.qualification_tasks == 0 or membership.qualified_at)),
        })
    return result

