"""Every hand-written SQL statement of the labeling app, in one place.

Most are on the annotator's hot path (next task, submit: every request of every annotator), where
the ORM spent more CPU building the query than Postgres spent running it; the rest are what the
ORM cannot say (UPDATE ... RETURNING, a claim in a WITH, COPY). `rankloop.rawsql` gives the
column lists from the models and turns rows back into model instances. The callers (actions,
queries, importing, quality) hold the rules; these functions only run statements."""
from __future__ import annotations

import operator

import orjson
from django.db import connection, models
from django.utils import timezone

from rankloop import rawsql

from .models import Annotation, Assignment, Candidate, ComparisonTask, Membership, PreferencePair, Project, Prompt

# --- next task ---------------------------------------------------------------------------------


def project_with_membership(slug, user_id):
    """(project, (paused_at, paused_reason, qualified_at, gate_gold_done) or None when not an active
    member, and the membership id), or None: the unarchived project `slug`. Hand-written: the
    next-task endpoint's first read, one join instead of two queries."""
    names = rawsql.attnames(Project)
    row = rawsql.fetch_one(
        f"SELECT {rawsql.columns(Project, 'p', names)}, m.id, m.paused_at, m.paused_reason, m.qualified_at, "
        f"m.gate_gold_done FROM {rawsql.table(Project)} p LEFT JOIN {rawsql.table(Membership)} m "
        f"ON m.project_id = p.id AND m.user_id = %s AND m.is_active "
        f"WHERE p.slug = %s AND NOT p.is_archived",
        [user_id, slug],
    )
    if row is None:
        return None
    project = rawsql.instance(Project, names, row[:-5])
    return project, (None if row[-5] is None else row[-4:])


# The open task first in the queue that the annotator has not had (params: project, annotator).
_FIRST_CLAIMABLE_SQL = """
    SELECT t.id FROM {task} t
    WHERE t.project_id = %s AND t.status = 'open' AND {gold} AND t.annotations_done + t.leased < t.overlap
      AND NOT EXISTS (
        SELECT 1 FROM {assignment} a WHERE a.task_id = t.id AND a.annotator_id = %s AND a.status <> 'expired'
      )
    ORDER BY {order}
    LIMIT 1 {lock}
"""

_CLAIM_SQL = """
UPDATE {task} SET leased = leased + 1
WHERE id = ({first})
AND NOT EXISTS (
    SELECT 1 FROM {assignment} m WHERE m.annotator_id = %s AND m.project_id = %s AND m.status = 'leased'
)
RETURNING {columns}
"""
_CLAIM_COLUMNS = ["id", "project_id", "prompt_id", "round_number", "status", "overlap", "annotations_done", "leased",
                  "is_gold"]


_ORDERS = {
    Project.QueueOrder.DEFAULT: "t.priority DESC, t.annotations_done + t.leased DESC, t.id",
    Project.QueueOrder.UNCERTAINTY: "t.priority DESC, t.uncertainty DESC, t.annotations_done + t.leased DESC, t.id",
}


def _first_claimable_sql(gold, queue_order, lock):
    # Each form repeats its partial index (task_queue_idx, task_uncertain_queue_idx,
    # task_gold_queue_idx): one index scan.
    return _FIRST_CLAIMABLE_SQL.format(
        task=ComparisonTask._meta.db_table, assignment=Assignment._meta.db_table,
        gold="t.is_gold" if gold else "NOT t.is_gold",
        order="t.id" if gold else _ORDERS.get(queue_order, _ORDERS[Project.QueueOrder.DEFAULT]),
        lock=lock,
    )


def claim_sql(gold=False, queue_order=Project.QueueOrder.DEFAULT):
    lock = "FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    return _CLAIM_SQL.format(
        task=ComparisonTask._meta.db_table, assignment=Assignment._meta.db_table,
        first=_first_claimable_sql(gold, queue_order, lock), columns=", ".join(_CLAIM_COLUMNS),
    )


def claim_open_task(project, annotator, *, gold=False):
    """Take a lease slot on the open task first in the queue (highest priority, then most
    annotations started, then oldest), in one statement, unless the annotator already holds a
    lease in this project (then None: the caller returns it). A claim that took nothing may
    still hold a task row it locked on the way (READ COMMITTED locks a row's newest version
    before rechecking it): the caller rolls its transaction back before locking anything else.

    The inner SELECT repeats the partial index task_queue_idx, so it is one index scan that
    stops at the first row it can lock; on Postgres, rows other transactions hold are skipped
    (FOR UPDATE SKIP LOCKED). On SQLite the IMMEDIATE transaction already serializes writers.
    Written as SQL because this is the hottest query of the product: the ORM spent more time
    compiling it than the database spent running it."""
    with connection.cursor() as cursor:
        cursor.execute(claim_sql(gold, project.queue_order), [project.pk, annotator.pk, annotator.pk, project.pk])
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


def claim_or_see_lease(project, annotator, *, gold=False):
    """The claim again, for the rare path: (task, False) if it claimed one, else (None, whether
    it saw a lease of the annotator), both from one snapshot (the ORM has no UPDATE in a WITH).
    SQLite has no UPDATE in WITH, and needs none: its writers run one at a time, so nothing can
    change between two statements."""
    params = [project.pk, annotator.pk, annotator.pk, project.pk]
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(claim_sql(gold, project.queue_order), params)
            row = cursor.fetchone()
        return (None, False) if row is None else (_claimed_task(project, row), False)
    sql = _CLAIM_OR_SEE_LEASE_SQL.format(
        claim=claim_sql(gold, project.queue_order), columns=", ".join(_CLAIM_COLUMNS),
        nulls=", ".join(["NULL"] * len(_CLAIM_COLUMNS)),
        assignment=Assignment._meta.db_table)
    rows = rawsql.fetch_all(sql, params + [annotator.pk, project.pk])
    for row in rows:
        if row[-1] is None:
            return _claimed_task(project, row[:-1]), False
    return None, bool(rows)


def claimable_task_exists_waiting(project, annotator, *, gold=False) -> bool:
    """Whether a task is claimable for the annotator, waiting for the rows other transactions
    hold instead of skipping them (the claim skips them): a claim in flight, maybe the
    annotator's other client's, or a row another claim locked without taking it. Claims nothing;
    the caller rolls its transaction back to let go of the row it locked."""
    lock = "FOR UPDATE" if connection.features.has_select_for_update else ""
    found = rawsql.fetch_one(_first_claimable_sql(gold, project.queue_order, lock), [project.pk, annotator.pk])
    return found is not None


def live_leases(project, annotator):
    """(assignment id, task id, task status) of the annotator's leases in the project, assignment
    rows locked, in id order. Hand-written for the lock of the assignment rows only (FOR UPDATE OF
    a) while reading the task's status in the same query."""
    lock = "FOR UPDATE OF a" if connection.features.has_select_for_update_of else ""
    return rawsql.fetch_all(
        f"SELECT a.id, a.task_id, t.status FROM {rawsql.table(Assignment)} a "
        f"JOIN {rawsql.table(ComparisonTask)} t ON t.id = a.task_id "
        f"WHERE a.annotator_id = %s AND a.project_id = %s AND a.status = 'leased' ORDER BY a.id {lock}",
        [annotator.pk, project.pk],
    )


def task_candidates(task):
    """The task's candidates in id order, each with the task's prompt (also set on the task), in one
    query; [] for a task without candidates (the task's prompt is then not loaded). Hand-written:
    every next task runs it."""
    through = ComparisonTask.candidates.through
    c_names, p_names = rawsql.attnames(Candidate), rawsql.attnames(Prompt)
    rows = rawsql.fetch_all(
        f"SELECT {rawsql.columns(Candidate, 'c', c_names)}, {rawsql.columns(Prompt, 'p', p_names)} "
        f"FROM {rawsql.table(through)} tc JOIN {rawsql.table(Candidate)} c ON c.id = tc.candidate_id "
        f"JOIN {rawsql.table(Prompt)} p ON p.id = c.prompt_id WHERE tc.comparisontask_id = %s ORDER BY c.id",
        [task.pk],
    )
    if not rows:
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


def upsert_lease(task, annotator, order, now, expires_at) -> Assignment:
    """Write the lease. One upsert (every next task writes one; the ORM's update_or_create is two
    statements): the only row that can exist for (task, annotator) here is an expired lease, which
    becomes the new one."""
    values = (task.pk, annotator.pk, task.project_id, Assignment.Status.LEASED, order, now, expires_at, None)
    sql = rawsql.insert_sql(Assignment, _LEASE_FIELDS, conflict=("task_id", "annotator_id"),
                            update=_LEASE_FIELDS[3:], returning=("id",))
    (assignment_id,) = rawsql.fetch_one(sql, rawsql.values(Assignment, _LEASE_FIELDS, values))
    assignment = Assignment.from_db(connection.alias, ("id",) + _LEASE_FIELDS, (assignment_id,) + values)
    assignment.task, assignment.annotator, assignment.project = task, annotator, task.project
    return assignment


# --- submit and skip -----------------------------------------------------------------------------


def locked_assignment(assignment_id: int):
    """(assignment, project, task, the task's prompt (id, project, split), standing) or None:
    assignment and task rows locked; standing is None when the annotator is not an active member,
    '' in good standing, else why they are paused. One hand-written query: submit and skip run
    it on every call."""
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
        return None
    loaded, start = [], 0
    for model, model_names in names.items():
        loaded.append(rawsql.instance(model, model_names, row[start:start + len(model_names)]))
        start += len(model_names)
    return (*loaded, row[-1])


ANNOTATION_FIELDS = ("assignment_id", "task_id", "annotator_id", "ranking", "pairwise_choice", "ratings", "flags",
                     "rationale", "ideal_answer", "time_on_task_ms", "created_at")


def write_submission(assignment, task, annotation_values, pairs_upsert=None) -> int:
    """Every write of a submit in one statement (one round trip on Postgres, rawsql.write_together):
    the annotation, the assignment's status, the task's counters and, when given, the task's pair
    upsert. Returns the new annotation's id."""
    now = assignment.finished_at
    (annotation_id,) = rawsql.write_together([
        (rawsql.insert_sql(Annotation, ANNOTATION_FIELDS, returning=("id",)),
         rawsql.values(Annotation, ANNOTATION_FIELDS, annotation_values)),
        (f"UPDATE {rawsql.table(Assignment)} SET status = %s, finished_at = %s WHERE id = %s",
         rawsql.values(Assignment, ["status", "finished_at", "id"], [assignment.status, now, assignment.pk])),
        (f"UPDATE {rawsql.table(ComparisonTask)} SET annotations_done = %s, leased = %s, status = %s, "
         f"completed_at = %s WHERE id = %s",
         rawsql.values(ComparisonTask, ["annotations_done", "leased", "status", "completed_at", "id"],
                       [task.annotations_done, task.leased, task.status, task.completed_at, task.pk])),
        *([pairs_upsert] if pairs_upsert else []),
    ])
    return annotation_id


def count_gold_answer(project, annotator, correct: bool):
    """Count a gold answer in the annotator's gate window and read the window back: (done, right,
    qualified_at), or None without an active membership. One UPDATE ... RETURNING (the ORM's
    update() returns no row), run by the submit of every gold answer."""
    return rawsql.fetch_one(
        f"UPDATE {rawsql.table(Membership)} SET gate_gold_done = gate_gold_done + 1, "
        f"gate_gold_correct = gate_gold_correct + %s WHERE project_id = %s AND user_id = %s AND is_active "
        f"RETURNING gate_gold_done, gate_gold_correct, qualified_at", [int(correct), project.pk, annotator.pk])


# --- pairs ---------------------------------------------------------------------------------------


_PAIR_KEY = ("task_id", "candidate_a_id", "candidate_b_id")
_PAIR_UPDATE = ("chosen_id", "rejected_id", "votes_a", "votes_b", "votes_tie", "is_tie", "agreement", "margin",
                "is_gold", "split", "round_number", "updated_at")
PAIR_FIELDS = ("project_id", "prompt_id") + _PAIR_KEY + _PAIR_UPDATE


def pairs_upsert(rows):
    """(sql, params): the upsert of a task's pairs, rows of PAIR_FIELDS' values. Hand-written: one
    multi-row INSERT ... ON CONFLICT DO UPDATE, which the submit folds into its single statement
    (bulk_create's update_conflicts cannot join that statement)."""
    sql = rawsql.insert_sql(PreferencePair, PAIR_FIELDS, rows=len(rows), conflict=_PAIR_KEY, update=_PAIR_UPDATE)
    return sql, [v for row in rows for v in rawsql.values(PreferencePair, PAIR_FIELDS, row)]


def execute(statement) -> int:
    """Run one (sql, params) statement of this module; the number of rows it touched."""
    return rawsql.execute(*statement)


# --- imports: COPY (Postgres only; an order of magnitude faster than INSERTs of model instances) --


def copy_prompts(project, rows, source, uids, splits, *, want_ids: bool) -> list | None:
    """COPY the prompt rows (importing.PromptRow) in; with want_ids, their new ids in order (the
    uids tell ours apart among the ids above the largest one before the COPY)."""
    now = timezone.now()
    dumps = orjson.dumps
    # COPY goes through psycopg's own cursor: wrap its errors as Django's (IntegrityError, ...).
    with connection.cursor() as cursor, connection.wrap_database_errors:
        cursor.execute("SELECT COALESCE(MAX(id), 0) FROM labeling_prompt")
        floor = cursor.fetchone()[0]
        with cursor.cursor.copy("COPY labeling_prompt (uid, project_id, messages, external_id, tags, source, split, "
                                "created_at) FROM STDIN") as copy:
            for row, uid, split in zip(rows, uids, splits, strict=True):
                copy.write_row((uid, project.pk, dumps(row.messages).decode(), row.external_id,
                                dumps(row.tags).decode(), row.source or source, split, now))
        if not want_ids:
            return None
        cursor.execute("SELECT uid, id FROM labeling_prompt WHERE project_id = %s AND id > %s", [project.pk, floor])
        ids = dict(cursor.fetchall())
    return [ids[uid] for uid in uids]


def known_external_ids_by_copy(project, external_ids) -> set:
    """Which of these (many) external ids the project has: COPY them into a temporary table and join
    (no giant IN list)."""
    with connection.cursor() as cursor, connection.wrap_database_errors:
        cursor.execute("CREATE TEMPORARY TABLE import_external_ids (external_id varchar(255)) ON COMMIT DROP")
        with cursor.cursor.copy("COPY import_external_ids (external_id) FROM STDIN") as copy:
            for external_id in external_ids:
                copy.write_row((external_id,))
        cursor.execute("SELECT p.external_id FROM labeling_prompt p JOIN import_external_ids i "
                       "ON p.external_id = i.external_id WHERE p.project_id = %s", [project.pk])
        known = {row[0] for row in cursor.fetchall()}
        cursor.execute("DROP TABLE import_external_ids")
    return known


def copy_instances(objects) -> None:
    """COPY new model instances of one model in, with ids drawn from the table's sequence first
    (several times faster than bulk_create's parameters for thousands of long texts), and set
    their ids."""
    model = type(objects[0])
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    now = timezone.now()
    values = [_copy_value(f, now) for f in fields]
    table = connection.ops.quote_name(model._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    # COPY goes through psycopg's own cursor: wrap its errors as Django's (IntegrityError, ...).
    with connection.cursor() as cursor, connection.wrap_database_errors:
        cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                       [model._meta.db_table, len(objects)])
        ids = [row[0] for row in cursor.fetchall()]
        with cursor.cursor.copy(f"COPY {table} (id, {columns}) FROM STDIN") as copy:
            for pk, obj in zip(ids, objects, strict=True):
                copy.write_row((pk, *[value(obj) for value in values]))
    for pk, obj in zip(ids, objects, strict=True):
        obj.pk = pk
        obj._state.adding = False


def _copy_value(field, now):
    """obj -> the field's value as COPY takes it: JSON as its text, auto_now(_add) times as now,
    the rest (text, numbers, booleans, uuids, foreign key ids) as the attribute holds it."""
    get = operator.attrgetter(field.attname)
    if isinstance(field, models.JSONField):
        dumps = orjson.dumps
        return lambda obj: None if (value := get(obj)) is None else dumps(value).decode()
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return lambda obj: now
    return get
