"""Prompt import from JSON Lines or CSV, all or nothing.

One line (JSON Lines) or row (CSV) per prompt:

    {"prompt": "text" | [{"role": "system"|"user"|"assistant", "content": "..."}, ...],
     "external_id": "id-in-your-system",        # optional; a re-import skips known ids
     "tags": ["tag", ...], "source": "where it came from",            # optional
     "candidates": ["answer", {"text": "answer", "source": "gpt-4", "external_id": "a1"}, ...],
     "priority": 5}                             # optional: its task's place in the queue

CSV columns: `prompt` (text) or `messages` (a JSON list), `external_id`, `tags`
(comma-separated), `source`, `priority`, and any number of `candidate_1`, `candidate_2`, ...
columns with an optional `candidate_source`.

A task's priority (an integer, higher served first, default 0) comes from its line, else from
the import's `priority` (for the whole file), else 0.

The whole file is checked before anything is written; any error names its line and field and
nothing is imported. Prompts with two or more candidates become one comparison task each
(a pairwise project takes exactly two; a ranking project takes 2..RANKLOOP_IMPORT_MAX_CANDIDATES,
so K may vary by task). Writes are batched inserts in one transaction.
"""
from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass, field

import orjson
from django.conf import settings
from django.db import IntegrityError, connection, transaction

from . import sql
from .actions.candidates import add_candidates
from .actions.tasks import NewTask, check_priority, create_tasks
from .errors import Conflict, LabelingError
from .models import Candidate, Project, Prompt, stable_split
from .submission import text_problem

ROLES = ("system", "user", "assistant")
MAX_ERRORS_REPORTED = 100
BATCH_SIZE = 2000


class ImportRejected(LabelingError):
    """The file was refused; `errors` lists {"line", "field", "message"}; nothing was written."""

    status = 400
    code = "import_rejected"


@dataclass
class CandidateRow:
    text: str
    source: str = ""
    external_id: str = ""


@dataclass
class PromptRow:
    line: int
    messages: list
    external_id: str | None = None
    tags: list = field(default_factory=list)
    source: str = ""
    candidates: list = field(default_factory=list)
    priority: int | None = None  # None: the import's default


@dataclass
class ImportReport:
    prompts_created: int = 0
    prompts_skipped: int = 0
    candidates_created: int = 0
    tasks_created: int = 0

    def as_dict(self):
        return {"prompts_created": self.prompts_created, "prompts_skipped_existing": self.prompts_skipped,
                "candidates_created": self.candidates_created, "tasks_created": self.tasks_created}


class _Errors:
    def __init__(self):
        self.items = []
        self.count = 0

    def add(self, line, field_name, message):
        self.count += 1
        if len(self.items) < MAX_ERRORS_REPORTED:
            self.items.append({"line": line, "field": field_name, "message": message})

    def raise_if_any(self):
        if not self.count:
            return
        first = self.items[0]
        more = f" ({self.count} errors in all; the first {len(self.items)} are listed)" if self.count > 1 else ""
        raise ImportRejected(
            f"Nothing was imported. Line {first['line']}, field {first['field'] or '(line)'}: "
            f"{first['message']}{more}", errors=self.items)


# --- reading and checking ------------------------------------------------------------------


def detect_format(data: bytes, *, fmt=None, filename=None, content_type=None) -> str:
    if fmt:
        fmt = fmt.lower()
        if fmt in ("jsonl", "ndjson", "json"):
            return "jsonl"
        if fmt == "csv":
            return "csv"
        raise ImportRejected(f"Unknown import format {fmt!r}; use jsonl or csv.")
    name = (filename or "").lower()
    if name.endswith(".csv") or "csv" in (content_type or ""):
        return "csv"
    if name.endswith((".jsonl", ".ndjson", ".json")) or "json" in (content_type or ""):
        return "jsonl"
    return "jsonl" if data.lstrip()[:1] in (b"{", b"") else "csv"


def read_prompt_file(project: Project, data: bytes, *, fmt=None, filename=None, content_type=None) -> list[PromptRow]:
    """Decode and check a whole file; raises ImportRejected naming every bad line and field."""
    max_bytes = settings.RANKLOOP_IMPORT_MAX_BYTES
    if len(data) > max_bytes:
        raise ImportRejected(f"The file is {len(data):,} bytes; the limit is {max_bytes:,} bytes. "
                             "Split it into smaller files (a re-import skips prompts already imported).")
    kind = detect_format(data, fmt=fmt, filename=filename, content_type=content_type)
    text = decode_text(data)
    if kind == "csv":
        records = _csv_records(text)
    else:
        records = _jsonl_records(text)
    checker = _RowChecker(project)
    rows = []
    max_lines = settings.RANKLOOP_IMPORT_MAX_LINES
    for line, record in records:
        if len(rows) >= max_lines:
            raise ImportRejected(f"The file has more than {max_lines:,} prompts, the limit per import. "
                                 "Split it into smaller files (a re-import skips prompts already imported).")
        row = checker.check(line, record)
        if row is not None:
            rows.append(row)
    checker.errors.raise_if_any()
    if not rows:
        raise ImportRejected("The file has no prompts.")
    return rows


def decode_text(data: bytes) -> str:
    """The file as text (UTF-8, a byte order mark dropped), or ImportRejected naming the line."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ImportRejected(f"Nothing was imported. Line {line}: the file is not valid UTF-8 "
                             f"(byte {exc.start + 1}).",
                             errors=[{"line": line, "field": "", "message": "invalid UTF-8"}]) from exc
    return text[1:] if text.startswith("\ufeff") else text


class _BadRecord:
    def __init__(self, message, field_name=""):
        self.message = message
        self.field = field_name


def _jsonl_records(text):
    loads = orjson.loads
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            yield number, loads(line)
        except orjson.JSONDecodeError as exc:
            yield number, _BadRecord(f"not valid JSON ({exc})")


def _csv_records(text):
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        yield 1, _BadRecord(f"not valid CSV ({exc})")
        return
    header = [h.strip().lower() for h in header]
    if "prompt" not in header and "messages" not in header:
        yield 1, _BadRecord("the CSV header needs a 'prompt' or a 'messages' column", "prompt")
        return
    candidate_columns = [i for i, h in enumerate(header) if h.startswith("candidate") and h != "candidate_source"]
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield reader.line_num, _BadRecord(f"not valid CSV ({exc})")
            continue
        if not any(v.strip() for v in values):
            continue
        line = reader.line_num
        if len(values) != len(header):
            yield line, _BadRecord(f"has {len(values)} columns, the header has {len(header)}")
            continue
        cells = dict(zip(header, values))
        record = {}
        if cells.get("messages", "").strip():
            try:
                record["prompt"] = orjson.loads(cells["messages"])
            except orjson.JSONDecodeError as exc:
                yield line, _BadRecord(f"not a JSON list of messages ({exc})", "messages")
                continue
        elif "prompt" in cells:
            record["prompt"] = cells["prompt"]
        if cells.get("external_id", "").strip():
            record["external_id"] = cells["external_id"].strip()
        if cells.get("tags", "").strip():
            record["tags"] = [t.strip() for t in cells["tags"].split(",") if t.strip()]
        if cells.get("source", "").strip():
            record["source"] = cells["source"].strip()
        if cells.get("priority", "").strip():
            record["priority"] = _csv_integer(cells["priority"].strip())
        source = cells.get("candidate_source", "").strip()
        record["candidates"] = [
            {"text": values[i], "source": source} for i in candidate_columns if values[i].strip()
        ]
        yield line, record


def _csv_integer(text):
    """A CSV cell of an optionally signed run of ASCII digits as that integer; else the text, for
    the checker to refuse."""
    digits = text[1:] if text[:1] == "-" else text
    return int(text) if digits.isascii() and digits.isdigit() else text


def check_import_priority(value) -> int | None:
    """The import's `priority` parameter (text from a query string or form, or an integer), or
    LabelingError naming it."""
    if value is None or value == "":
        return None
    return check_priority(_csv_integer(value.strip()) if isinstance(value, str) else value)


class _RowChecker:
    def __init__(self, project: Project):
        self.project = project
        self.errors = _Errors()
        self.max_chars = settings.RANKLOOP_IMPORT_MAX_TEXT_CHARS
        self.max_candidates = {Project.Mode.PAIRWISE: 2, Project.Mode.DEMONSTRATION: 0}.get(
            project.mode, settings.RANKLOOP_IMPORT_MAX_CANDIDATES)
        self.seen_ids = {}

    def _text(self, line, field_name, value, *, required=True, limit=None):
        if not isinstance(value, str):
            self.errors.add(line, field_name, "must be text")
            return None
        if required and not value.strip():
            self.errors.add(line, field_name, "is empty")
            return None
        limit = limit or self.max_chars
        if len(value) > limit:
            self.errors.add(line, field_name, f"is {len(value):,} characters long; the limit is {limit:,}")
            return None
        problem = text_problem(value)
        if problem:
            self.errors.add(line, field_name, problem)
            return None
        return value

    def check(self, line, record):
        if isinstance(record, _BadRecord):
            self.errors.add(line, record.field, record.message)
            return None
        if not isinstance(record, dict):
            self.errors.add(line, "", "must be a JSON object")
            return None
        if "prompt" in record:
            messages = self._messages(line, record["prompt"])
        elif "messages" in record:
            messages = self._messages(line, record["messages"], field_name="messages")
        else:
            self.errors.add(line, "prompt", "is missing")
            messages = None
        external_id = record.get("external_id")
        if external_id is not None:
            if isinstance(external_id, int) and not isinstance(external_id, bool):
                external_id = str(external_id)
            external_id = self._text(line, "external_id", external_id, limit=255)
            if external_id is not None:
                if external_id in self.seen_ids:
                    self.errors.add(line, "external_id",
                                    f"{external_id!r} repeats line {self.seen_ids[external_id]}")
                else:
                    self.seen_ids[external_id] = line
        tags = record.get("tags") or []
        if isinstance(tags, str):
            tags = [tags]
        if not isinstance(tags, list) or not all(
                isinstance(t, str) and 0 < len(t) <= 100 and text_problem(t) is None for t in tags):
            self.errors.add(line, "tags", "must be a list of short texts (no NUL characters)")
            tags = []
        source = record.get("source") or ""
        source = self._text(line, "source", source, required=False, limit=255) or ""
        candidates = self._candidates(line, record.get("candidates"))
        priority = record.get("priority")
        if priority is not None:
            try:
                priority = check_priority(priority)
            except LabelingError as exc:
                self.errors.add(line, "priority", exc.errors["priority"])
                priority = None
        if messages is None or candidates is None:
            return None
        return PromptRow(line=line, messages=messages, external_id=external_id or None, tags=tags,
                         source=source, candidates=candidates, priority=priority)

    def _messages(self, line, prompt, field_name="prompt"):
        if isinstance(prompt, str):
            text = self._text(line, field_name, prompt)
            return None if text is None else [{"role": "user", "content": text}]
        if not isinstance(prompt, list) or not prompt:
            self.errors.add(line, field_name, "must be text or a non-empty list of chat messages")
            return None
        messages, ok = [], True
        max_chars = self.max_chars
        for i, message in enumerate(prompt):
            if type(message) is dict:  # the common, valid case without building error paths
                role, content = message.get("role"), message.get("content")
                if (role in ROLES and type(content) is str and len(content) <= max_chars and content.strip()
                        and text_problem(content) is None):
                    messages.append({"role": role, "content": content})
                    continue
            where = f"{field_name}[{i}]"
            if not isinstance(message, dict):
                self.errors.add(line, where, 'must be an object {"role", "content"}')
                ok = False
                continue
            role = message.get("role")
            if role not in ROLES:
                self.errors.add(line, f"{where}.role", f"is {role!r}; use one of {', '.join(ROLES)}")
                ok = False
            content = self._text(line, f"{where}.content", message.get("content"))
            if content is None:
                ok = False
            messages.append({"role": role, "content": content})
        if ok and messages[-1]["role"] != "user":
            self.errors.add(line, f"{field_name}[{len(messages) - 1}].role",
                            "the last message must be the user's (the turn to answer)")
            ok = False
        return messages if ok else None

    def _candidates(self, line, candidates):
        if candidates in (None, ""):
            return []
        if not isinstance(candidates, list):
            self.errors.add(line, "candidates", "must be a list of answers")
            return None
        if len(candidates) > self.max_candidates:
            what = {Project.Mode.PAIRWISE: "a pairwise project compares 2",
                    Project.Mode.DEMONSTRATION: "a demonstration project takes prompts only (annotators write "
                                                "the replies)"}.get(self.project.mode,
                                                                    f"at most {self.max_candidates} per prompt")
            self.errors.add(line, "candidates", f"has {len(candidates)} answers; {what}")
            return None
        rows, ok = [], True
        for i, candidate in enumerate(candidates):
            where = f"candidates[{i}]"
            if isinstance(candidate, str):
                candidate = {"text": candidate}
            if not isinstance(candidate, dict):
                self.errors.add(line, where, 'must be text or an object {"text", "source", "external_id"}')
                ok = False
                continue
            text = self._text(line, f"{where}.text", candidate.get("text"))
            source = self._text(line, f"{where}.source", candidate.get("source") or "", required=False, limit=255)
            external_id = candidate.get("external_id") or ""
            if isinstance(external_id, int) and not isinstance(external_id, bool):
                external_id = str(external_id)
            external_id = self._text(line, f"{where}.external_id", external_id, required=False, limit=255)
            if text is None or source is None or external_id is None:
                ok = False
                continue
            rows.append(CandidateRow(text=text, source=source, external_id=external_id))
        return rows if ok else None


# --- writing -----------------------------------------------------------------------------


def import_prompts(project: Project, data: bytes, *, fmt=None, filename=None, content_type=None,
                   source="", priority=None) -> ImportReport:
    """Check the whole file, then write its new prompts, candidates and tasks in one
    transaction. Prompts whose external_id the project already has are skipped. `priority`
    (an integer, or its text) is the tasks' priority where a line gives none."""
    priority = check_import_priority(priority)
    rows = read_prompt_file(project, data, fmt=fmt, filename=filename, content_type=content_type)
    return write_prompt_rows(project, rows, source=source, priority=priority)


def write_prompt_rows(project: Project, rows: list[PromptRow], *, source="", priority=None) -> ImportReport:
    report = ImportReport()
    try:
        with transaction.atomic():
            # One import per project at a time: a second one waits here, then sees the first's
            # prompts as known and skips them. NO KEY UPDATE, not UPDATE: the claims' and
            # submits' foreign-key checks on the project row (KEY SHARE) do not wait for it.
            Project.objects.select_for_update(no_key=True).filter(pk=project.pk).values_list("pk").first()
            known = _known_external_ids(project, [r.external_id for r in rows if r.external_id])
            new_rows = [r for r in rows if not (r.external_id and r.external_id in known)]
            report.prompts_skipped = len(rows) - len(new_rows)
            prompt_ids = _insert_prompts(project, new_rows, source)
            candidates, groups = [], []
            for row, prompt_id in zip(new_rows, prompt_ids):
                if not row.candidates:
                    continue
                group = [Candidate(prompt_id=prompt_id, text=c.text, external_source=c.source or row.source or source,
                                   external_id=c.external_id) for c in row.candidates]
                candidates.extend(group)
                if len(group) >= 2:
                    groups.append((prompt_id, group, row.priority if row.priority is not None else priority or 0))
            if project.mode == Project.Mode.DEMONSTRATION:  # each prompt is a task: write its reply
                groups = [(prompt_id, [], row.priority if row.priority is not None else priority or 0)
                          for row, prompt_id in zip(new_rows, prompt_ids)]
            add_candidates(project, candidates)  # moderated, as generated ones are
            tasks = create_tasks(project, [NewTask(prompt_id, group, task_priority)
                                           for prompt_id, group, task_priority in groups], batch_size=BATCH_SIZE)
    except IntegrityError:  # the safety net under the lock (COPY's errors are wrapped as Django's)
        raise Conflict("Another import added some of these external ids at the same time. Nothing was "
                       "imported; run the import again (it skips prompts already imported).") from None
    report.prompts_created = len(new_rows)
    report.candidates_created = len(candidates)
    report.tasks_created = len(tasks)
    return report


def _insert_prompts(project, rows, source) -> list[int]:
    """Insert the rows' prompts; returns their new ids in order. On Postgres through COPY from
    plain tuples (an order of magnitude faster than INSERTs of model instances), then one
    query maps our uids to the new ids."""
    uids = [uuid.uuid4() for _ in rows]
    splits = [stable_split(project.pk, uid, project.heldout_percent) for uid in uids]
    if connection.vendor != "postgresql" or not rows:
        prompts = [Prompt(uid=uid, project=project, messages=row.messages, external_id=row.external_id, tags=row.tags,
                          source=row.source or source, split=split) for row, uid, split in zip(rows, uids, splits)]
        Prompt.objects.bulk_create(prompts, batch_size=BATCH_SIZE)
        return [p.pk for p in prompts]
    # Nothing refers to the new ids unless candidates or a demonstration's task do.
    want_ids = any(row.candidates for row in rows) or project.mode == Project.Mode.DEMONSTRATION
    ids = sql.copy_prompts(project, rows, source, uids, splits, want_ids=want_ids)
    return ids if want_ids else [None] * len(rows)


def _known_external_ids(project, external_ids):
    """Which of these external ids the project already has."""
    if not external_ids or not Prompt.objects.filter(project=project, external_id__isnull=False).exists():
        return set()
    if connection.vendor == "postgresql" and len(external_ids) > 1000:
        return sql.known_external_ids_by_copy(project, external_ids)  # a large file: no giant IN list
    known = set()
    for start in range(0, len(external_ids), 10000):
        chunk = external_ids[start:start + 10000]
        known.update(Prompt.objects.filter(project=project, external_id__in=chunk)
                     .values_list("external_id", flat=True))
    return known
