"""Every state change of the labeling domain, one named function each.

Views, API views, Celery tasks and management commands call these and nothing below them.
"""
from __future__ import annotations

import itertools
import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import Greatest
from django.utils import timezone

from rankloop import rawsql

from . import quality, review
from .errors import Conflict, InvalidSubmission, LabelingError, NotAllowed, NotFound, NotYours, Paused  # noqa: F401
from .models import (
    Annotation,
    Assignment,
    Candidate,
    ComparisonTask,
    Membership,
    PreferencePair,
    Project,
    Prompt,
)


def text_problem(value: str) -> str | None:
    """Why Postgres could not store this text, or None: a NUL character, or a lone UTF-16
    surrogate (JSON can spell one, "\\ud800"; UTF-8 cannot encode it)."""
    if "\x00" in value:
        return "contains a NUL character"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "contains a lone surrogate, which is not valid Unicode text"
    return None


# --- projects and members -------------------------------------------------------------


def add_annotator(project: Project, user, *, role: str | None = None) -> Membership:
    """Make `user` an active member (role: annotator, the default, or reviewer)."""
    defaults = {"is_active": True}
    if role is not None:
        if role not in Membership.Role.values:
            raise InvalidSubmission("Unknown role.", {"role": f"One of {', '.join(Membership.Role.values)}."})
        defaults["role"] = role
    membership, _ = Membership.objects.update_or_create(project=project, user=user, defaults=defaults)
    return membership


def remove_annotator(project: Project, user, *, now=None) -> None:
    """The user no longer labels this project: their live leases end, and those task slots go
    back to the queue (submit and skip also refuse non-members)."""
    now = now or timezone.now()
    with transaction.atomic():
        Membership.objects.filter(project=project, user=user).update(is_active=False)
        leases = Assignment.objects.select_for_update().filter(
            project=project, annotator=user, status=Assignment.Status.LEASED)
        _end_leases(list(leases.order_by("id").values_list("id", "task_id")), now)


def _end_leases(rows, now) -> None:
    """Expire these leases, (id, task_id) rows already locked, and give their slots back."""
    if not rows:
        return
    Assignment.objects.filter(id__in=[r[0] for r in rows]).update(status=Assignment.Status.EXPIRED, finished_at=now)
    for task_id, n in Counter(task_id for _, task_id in rows).items():
        # Never below 0, even for a task whose counter was reset (close_task zeroes it).
        ComparisonTask.objects.filter(pk=task_id).update(leased=Greatest(F("leased") - n, 0))


def ensure_member(project: Project, user) -> None:
    if not project.has_member(user):
        raise NotAllowed("You are not an annotator of this project.")


def labeling_project(slug, user) -> Project:
    """The unarchived project `slug`, for labeling: with whether `user` is an active member read in
    the same query (the next-task endpoint's first step). NotFound if there is no such project."""
    names = rawsql.attnames(Project)
    row = rawsql.fetch_one(
        f"SELECT {rawsql.columns(Project, 'p', names)}, m.id, m.paused_at, m.paused_reason, m.qualified_at, "
        f"m.gate_gold_done FROM {rawsql.table(Project)} p LEFT JOIN {rawsql.table(Membership)} m "
        f"ON m.project_id = p.id AND m.user_id = %s AND m.is_active "
        f"WHERE p.slug = %s AND NOT p.is_archived",
        [user.pk, slug],
    )
    if row is None:
        raise NotFound("No such project.")
    project = rawsql.instance(Project, names, row[:-5])
    if row[-5] is not None:
        project.remember_member(user, quality.MemberState.of(project, row[-4:]))
    return project


def projects_for(user):
    """The projects a user may label: all active ones for staff, their memberships otherwise."""
    projects = Project.objects.filter(is_archived=False)
    if user.is_staff:
        return projects
    return projects.filter(memberships__user=user, memberships__is_active=True)


# --- prompts, candidates, tasks -------------------------------------------------------


PRIORITY_RANGE = (-32768, 32767)  # ComparisonTask.priority is a smallint


def check_priority(value) -> int:
    """A task priority as given (an integer in PRIORITY_RANGE), or LabelingError."""
    low, high = PRIORITY_RANGE
    if type(value) is not int or not low <= value <= high:
        raise LabelingError(f"The priority must be a whole number from {low} to {high}.",
                            {"priority": f"A whole number from {low} to {high}."})
    return value


def create_task(prompt: Prompt, candidates, *, round=None, is_gold=False, gold_ranking=None,
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
        _check_ranking(gold_ranking, [c.pk for c in candidates], allow_ties=True)
    task = ComparisonTask.objects.create(
        project=project, prompt=prompt, round=round,
        overlap=ComparisonTask.GOLD_OVERLAP if is_gold else project.overlap,
        is_gold=is_gold, gold_ranking=gold_ranking if is_gold else None, priority=check_priority(priority),
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


# --- handing out tasks ------------------------------------------------------------------


def assign_next(project: Project, annotator, *, now=None) -> Assignment | None:
    """The annotator's next task, leased to them, or None when nothing is left for them.

    A returning annotator gets their own live lease back. Otherwise one short transaction
    claims the open task with the most annotations started (so tasks complete), skipping rows
    other transactions hold (`FOR UPDATE SKIP LOCKED` on Postgres; on SQLite the IMMEDIATE
    transaction serializes writers instead). A task never has more annotations plus live
    leases than its overlap, and an annotator never gets the same task twice.

    Every request of every annotator runs this, so its queries are hand-written (rawsql)."""
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
        task = _claim_open_task(project, annotator, gold=gold)
        if task is None and gold and not qualifying:  # no gold left for them: a real task instead
            gold = False
            task = _claim_open_task(project, annotator, gold=False)
        if task is None:  # they hold a lease, or nothing is claimable (the rare path)
            task, mine = _own_lease_or_claim(project, annotator, now, gold=gold)
            if mine is not None:
                # Still counted in the task's leases (not reclaimed yet): renew if it lapsed.
                if mine.expires_at <= now:
                    mine.expires_at = now + lease
                    mine.save(update_fields=["expires_at"])
                mine.project = project
                mine.candidates_in_order = _candidates_in_order(mine.shown_order)
                return mine
            if task is None:
                if qualifying:
                    raise Paused(
                        f"This project asks {project.qualification_tasks} gold tasks of a new annotator before "
                        f"real work, and has no more for you ({standing.gate_gold_done} answered): ask staff to "
                        "add gold tasks or to reinstate you.")
                return None
        candidates = _task_candidates(task)
        order = _shown_order(project, candidates)
        assignment = _lease(task, annotator, order, now, now + lease)
        by_id = {c.pk: c for c in candidates}
        assignment.candidates_in_order = [by_id[cid] for cid in order]
        return assignment


_RARE_PATH_ROUNDS = 5


def _own_lease_or_claim(project, annotator, now, *, gold=False):
    """After a claim that found nothing: (None, the annotator's live lease), else (a task
    claimed after all, None), else (None, None) once one snapshot shows no claimable task and
    no lease of theirs.

    The claim also finds nothing when it sees a lease of the annotator, and with two clients of
    one annotator that lease may be the other client's, being submitted (gone when we look for
    it), or just taken (not yet there when we looked): so look, and claim again, until one
    statement tells (on Postgres, the claim then also reports a lease it saw)."""
    reclaimed = False
    for _ in range(_RARE_PATH_ROUNDS):
        mine = _my_lease(project, annotator, now)
        if mine is not None:
            return None, mine
        task, saw_lease = _claim_or_see_lease(project, annotator, gold=gold)
        if task is not None:
            return task, None
        if saw_lease:
            continue  # a lease of theirs came or went between the two statements: look again
        if not reclaimed and reclaim_expired_leases(project=project, now=now):
            reclaimed = True
            continue
        return None, None
    return None, None


def _my_lease(project, annotator, now):
    """The annotator's live lease in this project on an open task, locked, or None. A lease on a
    task that is no longer open (closed outside close_task: the admin, SQL) ends on the way."""
    lock = "FOR UPDATE OF a" if connection.features.has_select_for_update_of else ""
    rows = rawsql.fetch_all(
        f"SELECT a.id, a.task_id, t.status FROM {rawsql.table(Assignment)} a "
        f"JOIN {rawsql.table(ComparisonTask)} t ON t.id = a.task_id "
        f"WHERE a.annotator_id = %s AND a.project_id = %s AND a.status = 'leased' ORDER BY a.id {lock}",
        [annotator.pk, project.pk],
    )
    _end_leases([(a_id, task_id) for a_id, task_id, status in rows if status != ComparisonTask.Status.OPEN], now)
    live = next((a_id for a_id, _, status in rows if status == ComparisonTask.Status.OPEN), None)
    if live is None:
        return None
    return Assignment.objects.select_related("task__prompt").get(pk=live)


def _task_candidates(task):
    """The task's candidates in id order, each with the task's prompt, in one query."""
    through = ComparisonTask.candidates.through
    c_names, p_names = rawsql.attnames(Candidate), rawsql.attnames(Prompt)
    rows = rawsql.fetch_all(
        f"SELECT {rawsql.columns(Candidate, 'c', c_names)}, {rawsql.columns(Prompt, 'p', p_names)} "
        f"FROM {rawsql.table(through)} tc JOIN {rawsql.table(Candidate)} c ON c.id = tc.candidate_id "
        f"JOIN {rawsql.table(Prompt)} p ON p.id = c.prompt_id WHERE tc.comparisontask_id = %s ORDER BY c.id",
        [task.pk],
    )
    if not rows:  # a demonstration task: a prompt, no candidates
        task.prompt = Prompt.objects.get(pk=task.prompt_id)
        return []
    prompt = rawsql.instance(Prompt, p_names, rows[0][len(c_names):])
    task.prompt = prompt
    candidates = []
    for row in rows:
        candidate = rawsql.instance(Candidate, c_names, row[:len(c_names)])
        candidate.prompt = prompt
        candidates.append(candidate)
    return candidates


_LEASE_FIELDS = ("task_id", "annotator_id", "project_id", "status", "shown_order", "leased_at", "expires_at",
                 "finished_at")


def _lease(task, annotator, order, now, expires_at) -> Assignment:
    """Write the lease. One upsert: the only row that can exist for (task, annotator) here is an
    expired lease, which becomes the new one."""
    values = (task.pk, annotator.pk, task.project_id, Assignment.Status.LEASED, order, now, expires_at, None)
    sql = rawsql.insert_sql(Assignment, _LEASE_FIELDS, conflict=("task_id", "annotator_id"),
                            update=_LEASE_FIELDS[3:], returning=("id",))
    (assignment_id,) = rawsql.fetch_one(sql, rawsql.values(Assignment, _LEASE_FIELDS, values))
    assignment = Assignment.from_db(connection.alias, ("id",) + _LEASE_FIELDS, (assignment_id,) + values)
    assignment.task, assignment.annotator, assignment.project = task, annotator, task.project
    return assignment


def _candidates_in_order(order):
    by_id = {c.pk: c for c in Candidate.objects.filter(pk__in=order)}
    return [by_id[cid] for cid in order]


_CLAIM_SQL = """
UPDATE {task} SET leased = leased + 1
WHERE id = (
    SELECT t.id FROM {task} t
    WHERE t.project_id = %s AND t.status = 'open' AND {gold} AND t.annotations_done + t.leased < t.overlap
      AND NOT EXISTS (
        SELECT 1 FROM {assignment} a WHERE a.task_id = t.id AND a.annotator_id = %s AND a.status <> 'expired'
      )
    ORDER BY {order}
    LIMIT 1 {lock}
)
AND NOT EXISTS (
    SELECT 1 FROM {assignment} m WHERE m.annotator_id = %s AND m.project_id = %s AND m.status = 'leased'
)
RETURNING {columns}
"""
_CLAIM_COLUMNS = ["id", "project_id", "prompt_id", "round_id", "status", "overlap", "annotations_done", "leased",
                  "is_gold"]


_ORDERS = {
    Project.QueueOrder.DEFAULT: "t.priority DESC, t.annotations_done + t.leased DESC, t.id",
    Project.QueueOrder.UNCERTAINTY: "t.priority DESC, t.uncertainty DESC, t.annotations_done + t.leased DESC, t.id",
}


def _claim_sql(gold=False, queue_order=Project.QueueOrder.DEFAULT):
    # Each form repeats its partial index (task_queue_idx, task_uncertain_queue_idx,
    # task_gold_queue_idx): one index scan.
    return _CLAIM_SQL.format(
        task=ComparisonTask._meta.db_table, assignment=Assignment._meta.db_table,
        gold="t.is_gold" if gold else "NOT t.is_gold",
        order="t.id" if gold else _ORDERS.get(queue_order, _ORDERS[Project.QueueOrder.DEFAULT]),
        lock="FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else "",
        columns=", ".join(_CLAIM_COLUMNS),
    )


def _claim_open_task(project, annotator, *, gold=False):
    """Take a lease slot on the open task first in the queue (highest priority, then most
    annotations started, then oldest), in one statement, unless the annotator already holds a
    lease in this project (then None: the caller returns it).

    The inner SELECT repeats the partial index task_queue_idx, so it is one index scan that
    stops at the first row it can lock; on Postgres, rows other transactions hold are skipped
    (FOR UPDATE SKIP LOCKED). On SQLite the IMMEDIATE transaction already serializes writers.
    Written as SQL because this is the hottest query of the product: the ORM spent more time
    compiling it than the database spent running it."""
    with connection.cursor() as cursor:
        cursor.execute(_claim_sql(gold, project.queue_order), [project.pk, annotator.pk, annotator.pk, project.pk])
        row = cursor.fetchone()
    return None if row is None else _claimed_task(project, row)


def _claimed_task(project, row):
    task = ComparisonTask.from_db(connection.alias, _CLAIM_COLUMNS, row)
    task.project = project
    return task


_CLAIM_OR_SEE_LEASE_SQL = """
WITH claimed AS ({claim})
SELECT {columns}, NULL FROM claimed
UNION ALL
(SELECT {nulls}, a.id FROM {assignment} a
 WHERE a.annotator_id = %s AND a.project_id = %s AND a.status = 'leased' LIMIT 1)
"""


def _claim_or_see_lease(project, annotator, *, gold=False):
    """The claim again, for the rare path: (task, False) if it claimed one, else (None, whether
    it saw a lease of the annotator), both from one snapshot. SQLite has no UPDATE in WITH, and
    needs none: its writers run one at a time, so nothing can change between two statements."""
    params = [project.pk, annotator.pk, annotator.pk, project.pk]
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_claim_sql(gold, project.queue_order), params)
            row = cursor.fetchone()
        return (None, False) if row is None else (_claimed_task(project, row), False)
    sql = _CLAIM_OR_SEE_LEASE_SQL.format(
        claim=_claim_sql(gold, project.queue_order), columns=", ".join(_CLAIM_COLUMNS),
        nulls=", ".join(["NULL"] * len(_CLAIM_COLUMNS)),
        assignment=Assignment._meta.db_table)
    rows = rawsql.fetch_all(sql, params + [annotator.pk, project.pk])
    for row in rows:
        if row[-1] is None:
            return _claimed_task(project, row[:-1]), False
    return None, bool(rows)


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
        _end_leases(rows, now)
        return len(rows)


def skip_task(assignment_id, annotator, *, now=None) -> Assignment:
    """The annotator passes on a task: it goes back to the others, never again to them."""
    now = now or timezone.now()
    with transaction.atomic():
        assignment = _locked_assignment(assignment_id, annotator)
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


def _locked_assignment(assignment_id, annotator) -> Assignment:
    """The annotator's assignment with its project, task and the task's prompt split, assignment
    and task rows locked, and whether they are still an active member, in one hand-written
    query (submit and skip run it on every call). Refuses someone else's assignment (NotYours),
    a user no longer a member (NotAllowed; staff may always) and an archived project (Conflict)."""
    try:
        assignment_id = int(assignment_id)
    except (TypeError, ValueError):
        raise NotFound("No such assignment.")
    names = {
        Assignment: rawsql.attnames(Assignment), Project: rawsql.attnames(Project),
        ComparisonTask: rawsql.attnames(ComparisonTask), Prompt: rawsql.attnames(Prompt, ("id", "project", "split")),
    }
    lock = "FOR UPDATE OF a, t" if connection.features.has_select_for_update_of else ""
    row = rawsql.fetch_one(
        f"SELECT {rawsql.columns(Assignment, 'a', names[Assignment])}, {rawsql.columns(Project, 'p', names[Project])}, "
        f"{rawsql.columns(ComparisonTask, 't', names[ComparisonTask])}, {rawsql.columns(Prompt, 'pr', names[Prompt])}, "
        # NULL: not an active member; '': in good standing; else why they are paused.
        f"(SELECT CASE WHEN m.paused_at IS NULL THEN '' ELSE COALESCE(NULLIF(m.paused_reason, ''), "
        f"'Paused by staff.') END FROM {rawsql.table(Membership)} m "
        f"WHERE m.project_id = a.project_id AND m.user_id = a.annotator_id AND m.is_active) "
        f"FROM {rawsql.table(Assignment)} a JOIN {rawsql.table(Project)} p ON p.id = a.project_id "
        f"JOIN {rawsql.table(ComparisonTask)} t ON t.id = a.task_id "
        f"JOIN {rawsql.table(Prompt)} pr ON pr.id = t.prompt_id WHERE a.id = %s {lock}",
        [assignment_id],
    )
    if row is None:
        raise NotFound("No such assignment.")
    loaded, start = {}, 0
    for model, model_names in names.items():
        loaded[model] = rawsql.instance(model, model_names, row[start:start + len(model_names)])
        start += len(model_names)
    assignment, task, project = loaded[Assignment], loaded[ComparisonTask], loaded[Project]
    if assignment.annotator_id != annotator.pk:
        raise NotYours("This assignment belongs to another annotator.")
    if row[-1]:
        raise Paused(row[-1])
    if row[-1] is not None:
        project.remember_member(annotator)
    elif not annotator.is_staff:
        raise NotAllowed("You are no longer an annotator of this project.")
    if project.is_archived:
        raise Conflict("This project is archived: it is read-only and takes no more annotations or skips.")
    assignment.project, assignment.task, assignment.annotator = project, task, annotator
    task.project, task.prompt = project, loaded[Prompt]
    return assignment


# --- submitting -----------------------------------------------------------------------------


@dataclass
class CleanSubmission:
    ranking: list
    pairwise_choice: str
    ratings: dict
    flags: dict
    rationale: str
    ideal_answer: str
    time_on_task_ms: int


def submit_annotation(assignment_id, annotator, payload: dict, *, now=None) -> Annotation:
    """Store an annotator's ranking for their assignment and update the task's pairs.

    Idempotent: the same submit again returns the stored annotation. Refuses (and writes
    nothing) a submit on someone else's assignment, on a skipped or closed task, on a lease
    that expired and went to someone else, or a payload that does not fit the task."""
    now = now or timezone.now()
    with transaction.atomic():
        assignment = _locked_assignment(assignment_id, annotator)
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
        (annotation_id,) = rawsql.write_together([
            (rawsql.insert_sql(Annotation, _ANNOTATION_FIELDS, returning=("id",)),
             rawsql.values(Annotation, _ANNOTATION_FIELDS, annotation_values)),
            (f"UPDATE {rawsql.table(Assignment)} SET status = %s, finished_at = %s WHERE id = %s",
             rawsql.values(Assignment, ["status", "finished_at", "id"], [assignment.status, now, assignment.pk])),
            (f"UPDATE {rawsql.table(ComparisonTask)} SET annotations_done = %s, leased = %s, status = %s, "
             f"completed_at = %s WHERE id = %s",
             rawsql.values(ComparisonTask, ["annotations_done", "leased", "status", "completed_at", "id"],
                           [task.annotations_done, task.leased, task.status, task.completed_at, task.pk])),
            *([_pairs_upsert(task, rankings)] if any(rankings) else []),
        ])
        if task.is_gold:
            quality.record_gold_answer(project, annotator, task, clean.ranking, now=now)
        elif review.wants_review(project, task, clean.flags):
            review.enqueue_after_submit(project, task, annotation_id, clean.flags, rankings)
        annotation = Annotation.from_db(connection.alias, ("id",) + _ANNOTATION_FIELDS,
                                        (annotation_id,) + annotation_values)
        annotation.assignment, annotation.task, annotation.annotator = assignment, task, annotator
        return annotation


_ANNOTATION_FIELDS = ("assignment_id", "task_id", "annotator_id", "ranking", "pairwise_choice", "ratings", "flags",
                      "rationale", "ideal_answer", "time_on_task_ms", "created_at")


def clean_submission(project: Project, shown_order: list, payload) -> CleanSubmission:
    """Validate a raw submit payload against what the annotator was shown.

    Values are taken as sent, never coerced: candidate ids are integers (or strings of digits,
    as in JSON object keys), scores and times whole numbers (`forms.submission_payload` turns the
    HTML form's strings of digits into them). Any other shape is an error on its field, and so is
    text Postgres cannot store (NUL, lone surrogates), so nothing reaches the database unchecked."""
    if not isinstance(payload, dict):
        raise InvalidSubmission("The submission must be a JSON object.")
    if project.mode == Project.Mode.DEMONSTRATION:
        return _clean_demonstration(payload)
    errors = {}
    shown = [int(c) for c in shown_order]
    choice = payload.get("choice") or ""
    ranking = payload.get("ranking")
    if not isinstance(choice, str):
        errors["choice"] = "Must be one of a, b, tie, both_bad."
    elif choice:
        if len(shown) != 2:
            errors["choice"] = "A pairwise choice needs a task with exactly two candidates."
        elif choice not in Annotation.PairwiseChoice.values:
            errors["choice"] = f"Unknown choice {_brief(choice)}; use one of a, b, tie, both_bad."
        elif choice == "tie" and not project.allow_ties:
            errors["choice"] = "This project does not allow ties."
        else:
            first, second = shown
            ranking = {"a": [[first], [second]], "b": [[second], [first]]}.get(choice, [[first, second]])
    elif ranking is None:
        errors["ranking"] = "Rank every candidate (or give a pairwise choice)."
    else:
        try:
            ranking = _check_ranking(ranking, shown, allow_ties=project.allow_ties)
        except InvalidSubmission as exc:
            errors["ranking"] = exc.message
    ratings = _check_ratings(project, shown, payload.get("ratings") or {}, errors)
    flags = _check_flags(project, shown, payload.get("flags") or {}, errors)
    limit = settings.RANKLOOP_MAX_TEXT_CHARS
    texts = {}
    for field in ("rationale", "ideal_answer"):
        value = payload.get(field) or ""
        if not isinstance(value, str):
            errors[field] = "Must be text."
        elif problem := text_problem(value):
            errors[field] = f"The text {problem}."
        elif len(value) > limit:
            errors[field] = f"Too long: {len(value)} characters, at most {limit}."
        texts[field] = value.strip() if isinstance(value, str) else ""
    time_ms = payload.get("time_on_task_ms")
    time_ms = 0 if time_ms is None else time_ms
    if type(time_ms) is not int or not 0 <= time_ms <= 24 * 3600 * 1000:
        errors["time_on_task_ms"] = "Must be a whole number of milliseconds (an integer), at most a day."
        time_ms = 0
    if errors:
        raise InvalidSubmission("The submission does not fit this task: " + "; ".join(
            f"{field}: {msg}" for field, msg in errors.items()), errors)
    return CleanSubmission(
        ranking=ranking, pairwise_choice=choice, ratings=ratings, flags=flags,
        rationale=texts["rationale"], ideal_answer=texts["ideal_answer"], time_on_task_ms=time_ms,
    )


def _clean_demonstration(payload) -> CleanSubmission:
    """A demonstration: the ideal reply (required, storable, within the text limit), no ranking."""
    reply, limit, errors = payload.get("ideal_answer", payload.get("reply")), settings.RANKLOOP_MAX_TEXT_CHARS, {}
    if not isinstance(reply, str) or not reply.strip():
        errors["ideal_answer"] = "Write the reply: it must not be empty."
    elif problem := text_problem(reply):
        errors["ideal_answer"] = f"The text {problem}."
    elif len(reply) > limit:
        errors["ideal_answer"] = f"Too long: {len(reply)} characters, at most {limit}."
    time_ms = payload.get("time_on_task_ms")
    time_ms = 0 if time_ms is None else time_ms
    if type(time_ms) is not int or not 0 <= time_ms <= 24 * 3600 * 1000:
        errors["time_on_task_ms"] = "Must be a whole number of milliseconds (an integer), at most a day."
    if errors:
        raise InvalidSubmission("The demonstration is not valid: " + "; ".join(
            f"{field}: {msg}" for field, msg in errors.items()), errors)
    return CleanSubmission(ranking=[], pairwise_choice="", ratings={}, flags={}, rationale="",
                           ideal_answer=reply.strip(), time_on_task_ms=time_ms)


def _brief(value) -> str:
    """A client's value quoted in an error message: repr (which escapes what JSON could not
    carry, such as lone surrogates), cut short."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _as_candidate_id(value):
    """An integer id, or a string of ASCII digits (JSON object keys are strings); else ValueError."""
    if type(value) is int:
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    raise ValueError


def _check_ranking(ranking, shown, *, allow_ties):
    if not isinstance(ranking, list) or not ranking:
        raise InvalidSubmission("The ranking must be a non-empty list of tiers (lists of candidate ids).")
    tiers, seen = [], []
    for tier in ranking:
        if not isinstance(tier, list):
            tier = [tier]  # a flat list ranks one candidate per tier
        if not tier:
            raise InvalidSubmission("A tier of the ranking is empty.")
        try:
            tier = [_as_candidate_id(c) for c in tier]
        except ValueError:
            raise InvalidSubmission("Candidate ids must be integers.")
        if len(tier) > 1 and not allow_ties:
            raise InvalidSubmission("This project does not allow ties.")
        tiers.append(tier)
        seen.extend(tier)
    unknown = sorted(set(seen) - set(shown))
    if unknown:
        raise InvalidSubmission(f"Unknown candidate ids for this task: {unknown}.")
    twice = sorted(c for c, n in Counter(seen).items() if n > 1)
    if twice:
        raise InvalidSubmission(f"Candidates ranked more than once: {twice}.")
    missing = sorted(set(shown) - set(seen))
    if missing:
        raise InvalidSubmission(f"Candidates not ranked: {missing}.")
    return tiers


def _check_ratings(project, shown, ratings, errors):
    if not isinstance(ratings, dict):
        errors["ratings"] = "Ratings must map candidate ids to {aspect: score}."
        return {}
    clean = {}
    aspects = set(project.rating_aspects or [])
    for key, scores in ratings.items():
        try:
            cid = _as_candidate_id(key)
        except ValueError:
            cid = None
        if cid not in shown:
            errors["ratings"] = f"Ratings for an unknown candidate: {_brief(key)}."
            return {}
        if not isinstance(scores, dict):
            errors["ratings"] = "Each candidate's ratings must map aspects to scores."
            return {}
        row = {}
        for aspect, score in scores.items():
            if score is None:
                continue  # not rated
            if aspect not in aspects:
                errors["ratings"] = f"Unknown rating aspect {_brief(aspect)}; this project rates {sorted(aspects)}."
                return {}
            # An integer as sent: 3.7 or true are not scores (int() would make them 3 and 1).
            if type(score) is not int or not 1 <= score <= project.rating_scale:
                errors["ratings"] = (f"Scores must be whole numbers from 1 to {project.rating_scale} (integers); "
                                     f"got {_brief(score)} for {_brief(aspect)}.")
                return {}
            row[aspect] = score
        if row:
            clean[str(cid)] = row
    return clean


def _check_flags(project, shown, flags, errors):
    if not isinstance(flags, dict):
        errors["flags"] = "Flags must map candidate ids to lists of flags."
        return {}
    clean, allowed = {}, set(project.flags)
    for key, names in flags.items():
        try:
            cid = _as_candidate_id(key)
        except ValueError:
            cid = None
        if cid not in shown:
            errors["flags"] = f"Flags for an unknown candidate: {_brief(key)}."
            return {}
        if isinstance(names, str):
            names = [names]
        # Checked as text before the set lookup: a list or an object inside is unhashable.
        if not isinstance(names, list) or any(not isinstance(n, str) or n not in allowed for n in names):
            errors["flags"] = f"Unknown flag; this project's flags are {sorted(allowed)}."
            return {}
        if names:
            clean[str(cid)] = sorted(set(names))
    return clean


# --- aggregation -------------------------------------------------------------------------


def pair_votes(rankings):
    """{(a, b): [votes_a, votes_b, votes_tie]} over K-wise rankings (a < b), C(K,2) each."""
    votes = defaultdict(lambda: [0, 0, 0])
    for ranking in rankings:
        rank = {cid: i for i, tier in enumerate(ranking) for cid in tier}
        for a, b in itertools.combinations(sorted(rank), 2):
            if rank[a] < rank[b]:
                votes[(a, b)][0] += 1
            elif rank[b] < rank[a]:
                votes[(a, b)][1] += 1
            else:
                votes[(a, b)][2] += 1
    return votes


def majority(votes_a, votes_b, votes_tie):
    """(winner, agreement, margin): winner is 'a', 'b' or 'tie' (a draw between a and b is a
    tie); agreement is the share of annotators in the largest group."""
    n = votes_a + votes_b + votes_tie
    if votes_a > votes_b and votes_a > votes_tie:
        winner = "a"
    elif votes_b > votes_a and votes_b > votes_tie:
        winner = "b"
    else:
        winner = "tie"
    agreement = max(votes_a, votes_b, votes_tie) / n if n else 0.0
    margin = 0.0 if winner == "tie" else abs(votes_a - votes_b) / n
    return winner, agreement, margin


def counted_annotations(project: Project, **filters):
    """The annotations that count in a project's pairs: not rejected by a reviewer, and (with
    exclude_paused_labels) not by an annotator who is paused there."""
    annotations = Annotation.objects.filter(is_rejected=False, **filters)
    if project.exclude_paused_labels:
        paused = Membership.objects.filter(project=project, paused_at__isnull=False).values("user_id")
        annotations = annotations.exclude(annotator_id__in=paused)
    return annotations


def excluded_annotation_counts(project: Project) -> dict:
    """How many of the project's annotations do not count in its pairs, and why."""
    all_annotations = Annotation.objects.filter(task__project=project, task__is_gold=False)
    rejected = all_annotations.filter(is_rejected=True).count()
    paused = 0
    if project.exclude_paused_labels:
        paused_users = Membership.objects.filter(project=project, paused_at__isnull=False).values("user_id")
        paused = all_annotations.filter(is_rejected=False, annotator_id__in=paused_users).count()
    return {"rejected_by_review": rejected, "paused_annotators": paused}


def reaggregate_annotator(project: Project, user) -> int:
    """Recompute the pairs of every task the user annotated in the project (after their pause or
    reinstatement changed what counts)."""
    total = 0
    for task in ComparisonTask.objects.filter(project=project, is_gold=False, annotations__annotator=user) \
            .select_related("prompt", "project").distinct().iterator():
        total += aggregate_task(task)
    return total


def aggregate_task(task: ComparisonTask) -> int:
    """Recompute the preference pairs of one task from all its annotations (a gold task's: from its
    known ranking, once answered). Returns how many pairs."""
    if task.is_gold:
        rankings = [task.gold_ranking] if task.annotations_done else []
    else:
        rankings = list(counted_annotations(task.project, task=task).values_list("ranking", flat=True))
    if not rankings and task.adjudicated_ranking:
        rankings = [task.adjudicated_ranking]  # every annotation rejected: the reviewer's ranking stands alone
    if not any(rankings):  # nothing counts any more (all rejected; or a demonstration): no pairs
        PreferencePair.objects.filter(task=task).delete()
        return 0
    sql, params = _pairs_upsert(task, rankings)
    return rawsql.execute(sql, params)


def _pairs_upsert(task, rankings):
    """The upsert (sql, params) of a task's pairs, aggregated over these rankings."""
    split, now = task.prompt.split, timezone.now()
    # A reviewer's final ranking decides each pair's winner; the votes stay the annotators'.
    final = {cid: i for i, tier in enumerate(task.adjudicated_ranking or []) for cid in tier}
    rows = []
    for (a, b), (va, vb, vt) in pair_votes(rankings).items():
        winner, agreement, margin = majority(va, vb, vt)
        if a in final and b in final:
            winner = "a" if final[a] < final[b] else "b" if final[b] < final[a] else "tie"
            n = va + vb + vt
            agreement = ({"a": va, "b": vb, "tie": vt}[winner] / n) if n else 1.0
            margin = 0.0 if winner == "tie" else (abs(va - vb) / n if n else 1.0)
        chosen, rejected = (b, a) if winner == "b" else (a, b)
        rows.append((task.project_id, task.prompt_id, task.pk, a, b, chosen, rejected, va, vb, vt, winner == "tie",
                     agreement, margin, task.is_gold, split, task.round_id, now))
    sql = rawsql.insert_sql(PreferencePair, _PAIR_FIELDS, rows=len(rows), conflict=_PAIR_KEY, update=_PAIR_UPDATE)
    return sql, [v for row in rows for v in rawsql.values(PreferencePair, _PAIR_FIELDS, row)]


_PAIR_KEY = ("task_id", "candidate_a_id", "candidate_b_id")
_PAIR_UPDATE = ("chosen_id", "rejected_id", "votes_a", "votes_b", "votes_tie", "is_tie", "agreement", "margin",
                "is_gold", "split", "round_id", "updated_at")
_PAIR_FIELDS = ("project_id", "prompt_id") + _PAIR_KEY + _PAIR_UPDATE


def pair_sources(project: Project) -> list[str]:
    """The sources the project's pairs come from, sorted."""
    return sorted(PreferencePair.objects.filter(project=project).order_by().values_list("source", flat=True)
                  .distinct())


def pair_source_counts(project: Project) -> list[dict]:
    """[{"source", "pairs"}] for the project's pairs, by source."""
    return list(PreferencePair.objects.filter(project=project).order_by("source").values("source")
                .annotate(pairs=Count("id")))


def reaggregate_project(project: Project) -> int:
    total = 0
    for task in ComparisonTask.objects.filter(project=project, annotations_done__gt=0).select_related(
            "prompt", "project").iterator():
        with transaction.atomic():
            total += aggregate_task(task)
    return total


# --- agreement and progress ---------------------------------------------------------------


def project_agreement(project: Project) -> dict:
    """Pairwise agreement (the share of annotator pairs that agree on a candidate pair) and
    Krippendorff's alpha (nominal: a better / b better / tie) over pairs with 2+ votes."""
    return _agreement(list(_multi_vote_pairs(project).values_list("votes_a", "votes_b", "votes_tie")))


def agreement_by_round(project: Project) -> list[dict]:
    """project_agreement per labeling round (round None: tasks from outside any round), oldest first."""
    by_round = defaultdict(list)
    for number, *votes in _multi_vote_pairs(project).values_list("round__number", "votes_a", "votes_b", "votes_tie"):
        by_round[number].append(tuple(votes))
    return [{"round": number, **_agreement(counts)}
            for number, counts in sorted(by_round.items(), key=lambda kv: (kv[0] is not None, kv[0] or 0))]


def _multi_vote_pairs(project):
    return (PreferencePair.objects.filter(project=project, is_gold=False)
            .annotate(n=F("votes_a") + F("votes_b") + F("votes_tie")).filter(n__gte=2))


def _agreement(counts) -> dict:
    import krippendorff
    import numpy as np

    if not counts:
        return {"pairs": 0, "pairwise_agreement": None, "krippendorff_alpha": None}
    agree = total = 0
    for row in counts:
        n = sum(row)
        agree += sum(c * (c - 1) // 2 for c in row)
        total += n * (n - 1) // 2
    alpha = None
    matrix = np.array(counts, dtype=float)
    if (matrix.sum(axis=0) > 0).sum() >= 2:  # alpha is undefined when everyone used one value
        alpha = float(krippendorff.alpha(value_counts=matrix, level_of_measurement="nominal"))
    return {"pairs": len(counts), "pairwise_agreement": agree / total if total else None, "krippendorff_alpha": alpha}


def project_progress(project: Project) -> dict:
    tasks = ComparisonTask.objects.filter(project=project).aggregate(
        total=Count("id"),
        complete=Count("id", filter=Q(status=ComparisonTask.Status.COMPLETE)),
        closed=Count("id", filter=Q(status=ComparisonTask.Status.CLOSED)),
        wanted=Sum("overlap", filter=~Q(status=ComparisonTask.Status.CLOSED)),
        done=Sum("annotations_done"),
        leased=Sum("leased"),
    )
    wanted, done = tasks["wanted"] or 0, tasks["done"] or 0
    return {
        "tasks": tasks["total"], "tasks_complete": tasks["complete"], "tasks_closed": tasks["closed"],
        "annotations_wanted": wanted, "annotations_done": done, "leased": tasks["leased"] or 0,
        "annotations_left": max(wanted - done, 0),
        "percent": round(100 * done / wanted, 1) if wanted else 0.0,
    }


def annotator_progress(project: Project, annotator, *, now=None) -> dict:
    now = now or timezone.now()
    start_of_day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    mine = Annotation.objects.filter(task__project=project, annotator=annotator)
    left = (
        ComparisonTask.objects.filter(project=project, status=ComparisonTask.Status.OPEN)
        .exclude(assignments__annotator=annotator, assignments__status__in=["submitted", "skipped"])
        .count()
    )
    return {"done_today": mine.filter(created_at__gte=start_of_day).count(), "done_total": mine.count(), "left": left}


def annotations_per_annotator(project: Project):
    return list(
        Annotation.objects.filter(task__project=project)
        .values("annotator__username")
        .annotate(n=Count("id"), avg_ms=Sum("time_on_task_ms") / Count("id"))
        .order_by("-n")
    )

