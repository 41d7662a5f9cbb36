"""Assignments, the leases of tasks to annotators: the next task (the claim), skipping, lapsed
leases going back to the queue."""
from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta

from django.db import OperationalError, transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone

from .. import quality, sql
from ..errors import Conflict, NotAllowed, NotFound, NotYours, Paused
from ..models import Assignment, Candidate, ComparisonTask, Project, Prompt
from ..queries import ensure_member

DEADLOCK_DETECTED = "40P01"  # Postgres's SQLSTATE


def assign_next(project: Project, annotator, *, now=None) -> Assignment | None:
    """The annotator's next task, leased to them, or None when nothing is left for them.

    A returning annotator gets their own live lease back. Otherwise one short transaction
    claims the open task with the most annotations started (so tasks complete), skipping rows
    other transactions hold (`FOR UPDATE SKIP LOCKED` on Postgres; on SQLite the IMMEDIATE
    transaction serializes writers instead). A task never has more annotations plus live
    leases than its overlap, and an annotator never gets the same task twice.

    Every request of every annotator runs this, so its queries are hand-written (labeling.sql)."""
    ensure_member(project, annotator)
    standing = quality.member_state(project, annotator)
    if standing.paused_reason:
        raise Paused(standing.paused_reason)
    # Gold at the project's share, indistinguishable from other tasks; only gold while qualifying.
    qualifying = not standing.qualified
    gold = qualifying or (project.gold_share > 0 and random.random() < project.gold_share)
    now = now or timezone.now()
    lease = timedelta(seconds=project.lease_seconds)
    with transaction.atomic():
        task = sql.claim_open_task(project, annotator, gold=gold)
        if task is None and gold and not qualifying:  # no gold left for them: a real task instead
            gold = False
            task = sql.claim_open_task(project, annotator, gold=False)
        if task is not None:
            return _lease(project, annotator, task, now, lease)
        _let_go_of_unclaimed_rows()
    # They hold a lease, or nothing is claimable (the rare path).
    assignment = _own_lease_or_claim(project, annotator, now, lease, gold=gold)
    if assignment is None and qualifying:
        raise Paused(
            f"This project asks {project.qualification_tasks} gold tasks of a new annotator before "
            f"real work, and has no more for you ({standing.gate_gold_done} answered): ask staff to "
            "add gold tasks or to reinstate you.")
    return assignment


def _let_go_of_unclaimed_rows():
    """End the current transaction (or savepoint) of a claim that took nothing by rolling it back:
    it wrote nothing, but it may hold a task row it locked without taking it (in READ COMMITTED,
    Postgres locks a row's newest version before it rechecks the row, and keeps the lock when the
    recheck fails). Held on while locking an assignment, that lock deadlocks with a submit, which
    locks its assignment, then its task."""
    transaction.set_rollback(True)


def _lease(project, annotator, task, now, lease):
    """Lease the claimed task to the annotator, inside the claim's transaction."""
    candidates = _task_candidates(task)
    order = _shown_order(project, candidates)
    assignment = sql.upsert_lease(task, annotator, order, now, now + lease)
    by_id = {c.pk: c for c in candidates}
    assignment.candidates_in_order = [by_id[cid] for cid in order]
    return assignment


_RARE_PATH_ROUNDS = 8


def _own_lease_or_claim(project, annotator, now, lease, *, gold=False):
    """After a claim that found nothing: the annotator's live lease, else a task claimed after
    all and leased, else None once nothing is claimable and no lease of theirs is there.

    The claim also finds nothing when it sees a lease of the annotator, and with two clients of
    one annotator that lease may be the other client's, being submitted (gone when we look for
    it), or just taken (not yet there when we looked): so look, and claim again (on Postgres, the
    claim then also reports a lease it saw). And it skips rows other transactions hold, which
    may be the last claimable tasks: so before saying nothing is left, wait for those
    transactions (claimable_task_exists_waiting), then look for a lease once more (the claim
    waited for may have been the other client's).

    Each step is its own transaction (a savepoint inside the caller's), and one that claimed
    nothing is rolled back, so no task row stays locked while _my_lease locks assignments."""
    reclaimed = settled = False
    for _ in range(_RARE_PATH_ROUNDS):
        mine = _my_lease(project, annotator, now, lease)
        if mine is not None:
            return mine
        if settled:  # nothing was claimable once held rows were waited for, and still no lease
            if not reclaimed and reclaim_expired_leases(project=project, now=now):
                reclaimed, settled = True, False
                continue
            return None
        with transaction.atomic():
            task, saw_lease = sql.claim_or_see_lease(project, annotator, gold=gold)
            if task is not None:
                return _lease(project, annotator, task, now, lease)
            _let_go_of_unclaimed_rows()
        if saw_lease:
            continue  # a lease of theirs came or went between the two statements: look again
        settled = not _claimable_after_waiting(project, annotator, gold)
    return None


def _claimable_after_waiting(project, annotator, gold) -> bool:
    """Whether a task is claimable once the transactions holding rows the claim skipped end. A
    deadlock among such waits (their scans lock rows in their own snapshot's order) only says:
    look again."""
    try:
        with transaction.atomic():
            found = sql.claimable_task_exists_waiting(project, annotator, gold=gold)
            _let_go_of_unclaimed_rows()
    except OperationalError as exc:
        if getattr(exc.__cause__, "sqlstate", None) != DEADLOCK_DETECTED:
            raise
        return True
    return found


def _my_lease(project, annotator, now, lease):
    """The annotator's live lease in this project on an open task, renewed if it lapsed (still
    counted in the task's leases: not reclaimed yet), or None. A lease on a task that is no
    longer open (closed outside close_task: the admin, SQL) ends on the way."""
    with transaction.atomic():
        rows = sql.live_leases(project, annotator)
        end_leases([(a_id, task_id) for a_id, task_id, status in rows if status != ComparisonTask.Status.OPEN], now)
        live = next((a_id for a_id, _, status in rows if status == ComparisonTask.Status.OPEN), None)
        if live is None:
            return None
        mine = Assignment.objects.select_related("task__prompt").get(pk=live)
        if mine.expires_at <= now:
            mine.expires_at = now + lease
            mine.save(update_fields=["expires_at"])
    mine.project = project
    mine.candidates_in_order = _candidates_in_order(mine.shown_order)
    return mine


def _task_candidates(task):
    """The task's candidates in id order, each with the task's prompt, in one query."""
    candidates = sql.task_candidates(task)
    if not candidates:  # a demonstration task: a prompt, no candidates
        task.prompt = Prompt.objects.get(pk=task.prompt_id)
    return candidates


def _candidates_in_order(order):
    by_id = {c.pk: c for c in Candidate.objects.filter(pk__in=order)}
    return [by_id[cid] for cid in order]


def _shown_order(project, candidates):
    if project.flagged_candidates == Project.FlaggedCandidates.HIDE:
        unflagged = [c.pk for c in candidates if not c.is_flagged]
        ids = unflagged if len(unflagged) >= 2 else [c.pk for c in candidates]
    else:
        ids = [c.pk for c in candidates]
    ids.sort()
    if project.shuffle_positions:
        random.SystemRandom().shuffle(ids)
    return ids


def end_leases(rows, now) -> None:
    """Expire these leases, (id, task_id) rows already locked, and give their slots back. A step of
    the actions that end leases (removing, pausing an annotator; reclaiming), inside their
    transaction."""
    if not rows:
        return
    Assignment.objects.filter(id__in=[r[0] for r in rows]).update(status=Assignment.Status.EXPIRED, finished_at=now)
    for task_id, n in Counter(task_id for _, task_id in rows).items():
        # Never below 0, even for a task whose counter was reset (close_task zeroes it).
        ComparisonTask.objects.filter(pk=task_id).update(leased=Greatest(F("leased") - n, 0))


def reclaim_expired_leases(*, project=None, now=None, limit=1000) -> int:
    """Expire lapsed leases and give their slots back to the queue. Returns how many."""
    now = now or timezone.now()
    with transaction.atomic():
        lapsed = Assignment.objects.select_for_update(skip_locked=True).filter(
            status=Assignment.Status.LEASED, expires_at__lte=now
        )
        if project is not None:
            lapsed = lapsed.filter(project=project)
        rows = list(lapsed.order_by("id").values_list("id", "task_id")[:limit])
        end_leases(rows, now)
        return len(rows)


def skip_task(assignment_id, annotator, *, now=None) -> Assignment:
    """The annotator passes on a task: it goes back to the others, never again to them."""
    now = now or timezone.now()
    with transaction.atomic():
        assignment = locked_assignment(assignment_id, annotator)
        if assignment.status == Assignment.Status.SKIPPED:
            return assignment
        if assignment.status == Assignment.Status.SUBMITTED:
            raise Conflict("This task is already submitted; it cannot be skipped.")
        was_leased = assignment.status == Assignment.Status.LEASED
        assignment.status = Assignment.Status.SKIPPED
        assignment.finished_at = now
        assignment.save(update_fields=["status", "finished_at"])
        if was_leased:
            ComparisonTask.objects.filter(pk=assignment.task_id).update(leased=F("leased") - 1)
        return assignment


def locked_assignment(assignment_id, annotator) -> Assignment:
    """The annotator's assignment with its project, task and the task's prompt split, assignment
    and task rows locked, and whether they are still an active member, in one hand-written
    query (submit and skip run it on every call). Refuses someone else's assignment (NotYours),
    a user no longer a member (NotAllowed; staff may always) and an archived project (Conflict).
    Inside the caller's transaction."""
    try:
        assignment_id = int(assignment_id)
    except (TypeError, ValueError):
        raise NotFound("No such assignment.") from None
    found = sql.locked_assignment(assignment_id)
    if found is None:
        raise NotFound("No such assignment.")
    assignment, project, task, prompt, standing = found
    if assignment.annotator_id != annotator.pk:
        raise NotYours("This assignment belongs to another annotator.")
    if standing:
        raise Paused(standing)
    if standing is not None:
        project.remember_member(annotator)
    elif not annotator.is_staff:
        raise NotAllowed("You are no longer an annotator of this project.")
    if project.is_archived:
        raise Conflict("This project is archived: it is read-only and takes no more annotations or skips.")
    assignment.project, assignment.task, assignment.annotator = project, task, annotator
    task.project, task.prompt = project, prompt
    return assignment
