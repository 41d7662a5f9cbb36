"""Seeding a project from existing preference data: TRL preference JSON Lines (what `datasets`
exports for HH-RLHF, UltraFeedback, OpenAssistant...) become labelled preference pairs.

One line per pair, in any of TRL's preference shapes:

    standard:         {"prompt": "text", "chosen": "text", "rejected": "text"}
    conversational:   {"prompt": [messages ending with the user's turn],
                       "chosen": [assistant message(s)], "rejected": [assistant message(s)]}
                      (chosen / rejected may also be plain text, as in the shared HH and OASST files)
                      (or chosen / rejected as whole conversations repeating the prompt, as
                      UltraFeedback binarized ships: the prompt must be the turns they share)
    implicit prompt:  {"chosen": [the whole conversation], "rejected": [the whole conversation]}:
                      the prompt is the turns both share, up to the last user turn; Anthropic's
                      transcripts ("\\n\\nHuman: ...\\n\\nAssistant: ...") are read the same way
    optional:         "id" (text or integer), "margin" (a number >= 0), or "score_chosen" and
                      "score_rejected" (UltraFeedback's ratings; the margin is their difference)

Each pair's prompt is matched (a prompt of the project with the same messages) or created; its
two answers are matched (same text, same prompt) or created as external candidates; the pair is
written with its winner, `source` "import:<name>", agreement 1 and no votes (no annotator of the
project voted), margin as given, else 1.0 (as one unanimous label). Other keys are ignored.

The whole file is checked first, like the prompt import (labeling.importing): every bad line
and field is reported and nothing is written. A line is known by its id (within its source),
else by a hash of its prompt, chosen and rejected: a re-import adds nothing. Imports into one
project take turns (a row lock); the second sees the first's pairs and skips them.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import math
import re
import uuid
import zlib
from dataclasses import dataclass

import orjson
from django.conf import settings
from django.db import IntegrityError, connection, transaction

from . import sql
from .actions.candidates import moderated
from .errors import Conflict, LabelingError
from .importing import (
    BATCH_SIZE,
    ROLES,
    ImportRejected,
    _BadRecord,
    _Errors,
    _jsonl_records,
    _RowChecker,
    decode_text,
)
from .models import Candidate, PreferencePair, Project, Prompt, stable_split

SOURCE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+@/-]{0,99}")
SOURCE_HELP = ("1 to 100 letters, digits and . _ - + @ /, starting with a letter or digit "
               "(e.g. hh-rlhf or ultrafeedback)")
PROMPT_ID_PREFIX = "sha256:"  # external_id of a prompt created by a preference import
_TRANSCRIPT_TURN = re.compile(r"\n\n(Human|Assistant):[ \t]?")


@dataclass
class PairRow:
    line: int
    messages: list
    chosen: str
    rejected: str
    margin: float
    external_id: str | None
    key: str


@dataclass
class PreferenceImportReport:
    source: str
    pairs_created: int = 0
    pairs_skipped_existing: int = 0
    duplicate_lines_skipped: int = 0
    prompts_created: int = 0
    prompts_matched: int = 0
    candidates_created: int = 0

    def as_dict(self):
        return {"source": self.source, "pairs_created": self.pairs_created,
                "pairs_skipped_existing": self.pairs_skipped_existing,
                "duplicate_lines_skipped": self.duplicate_lines_skipped,
                "prompts_created": self.prompts_created, "prompts_matched": self.prompts_matched,
                "candidates_created": self.candidates_created}


# --- the source name ---------------------------------------------------------------------------


def source_name(source=None, filename=None) -> str:
    """The pairs' source, "import:<name>": the name given (with or without the prefix), else the
    file's name without its extensions. LabelingError when neither gives a usable name."""
    prefix = PreferencePair.IMPORT_PREFIX
    if source not in (None, ""):
        if not isinstance(source, str):
            raise LabelingError("The source must be a name.", {"source": SOURCE_HELP})
        name = source.strip()
        name = name[len(prefix):] if name.startswith(prefix) else name
        if not SOURCE_NAME.fullmatch(name):
            raise LabelingError(f"The source name {name[:60]!r} is not usable; use {SOURCE_HELP}.",
                                {"source": SOURCE_HELP})
        return prefix + name
    if filename:
        stem = str(filename).replace("\\", "/").rsplit("/", 1)[-1]
        for ext in (".gz", ".jsonl", ".ndjson", ".json"):
            stem = stem[: -len(ext)] if stem.lower().endswith(ext) else stem
        name = re.sub(r"[^A-Za-z0-9._+@-]+", "-", stem).strip("-._+@")[:100]
        if name:
            return prefix + name
    raise LabelingError("Name the source of these pairs (source=NAME), e.g. hh-rlhf: it is recorded on every "
                        "pair, and rounds and exports can filter by it.", {"source": "Required: " + SOURCE_HELP})


def check_limit(value) -> int | None:
    """The import's `limit` (the first N lines), from a query string, form or option; or LabelingError."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if type(value) is not int or value < 1:
        raise LabelingError("The limit must be a whole number of lines, 1 or more.", {"limit": "A whole number >= 1."})
    return value


# --- reading and checking ----------------------------------------------------------------------


def _gunzip(data: bytes, max_bytes: int) -> bytes:
    """A gzip file's content, read no further than the size limit (so a small bomb cannot fill memory)."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as handle:
            content = handle.read(max_bytes + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise ImportRejected(f"Nothing was imported: the file looks gzip-compressed but cannot be read ({exc}).",
                             errors=[{"line": 0, "field": "", "message": "invalid gzip data"}]) from exc
    if len(content) > max_bytes:
        raise ImportRejected(f"The file holds more than {max_bytes:,} bytes once uncompressed, the limit. Split it "
                             "into smaller files (a re-import skips pairs already imported).")
    return content


def read_preference_file(data: bytes, *, source: str, limit: int | None = None) -> tuple[list[PairRow], int]:
    """Decode and check a whole file (gzip allowed): (rows, duplicate lines dropped). Raises
    ImportRejected naming every bad line and field. `limit` reads only the first N lines."""
    max_bytes = settings.RANKLOOP_IMPORT_MAX_BYTES
    if len(data) > max_bytes:
        raise ImportRejected(f"The file is {len(data):,} bytes; the limit is {max_bytes:,} bytes. "
                             "Split it into smaller files (a re-import skips pairs already imported).")
    if data[:2] == b"\x1f\x8b":
        data = _gunzip(data, max_bytes)
    checker = _PairChecker(source)
    rows, keys, duplicates, lines = [], set(), 0, 0
    max_lines = settings.RANKLOOP_IMPORT_MAX_LINES
    for line, record in _jsonl_records(decode_text(data)):
        if limit and lines >= limit:
            break
        lines += 1
        if lines > max_lines:
            raise ImportRejected(f"The file has more than {max_lines:,} pairs, the limit per import. Split it "
                                 "(or import the first N lines with a limit); a re-import skips pairs already "
                                 "imported.")
        row = checker.check(line, record)
        if row is None:
            continue
        if row.key in keys:  # the same pair twice, without ids: one is enough
            duplicates += 1
            continue
        keys.add(row.key)
        rows.append(row)
    checker.errors.raise_if_any()
    if not rows:
        raise ImportRejected("The file has no preference pairs.")
    return rows, duplicates


def _hash(value) -> str:
    return hashlib.sha256(orjson.dumps(value)).hexdigest()


class _PairChecker(_RowChecker):
    """Checks one line (the prompt import's text and message checks, reused)."""

    def __init__(self, source: str):
        self.source = source
        self.errors = _Errors()
        self.max_chars = settings.RANKLOOP_IMPORT_MAX_TEXT_CHARS
        self.seen_ids = {}

    def check(self, line, record):
        if isinstance(record, _BadRecord):
            self.errors.add(line, record.field, record.message)
            return None
        if not isinstance(record, dict):
            self.errors.add(line, "", "must be a JSON object")
            return None
        before = self.errors.count
        missing = [side for side in ("chosen", "rejected") if record.get(side) is None]
        for side in missing:
            self.errors.add(line, side, "is missing")
        if "prompt" in record and record["prompt"] is not None and not missing and _whole_conversations(record):
            messages, answers = self._with_conversations(line, record)
        elif "prompt" in record and record["prompt"] is not None:
            messages = self._prompt(line, record["prompt"])
            answers = {side: self._answer(line, side, record[side]) for side in ("chosen", "rejected")
                       if side not in missing}
        elif missing:
            messages, answers = None, {}
        else:
            messages, answers = self._implicit(line, record["chosen"], record["rejected"])
        chosen, rejected = answers.get("chosen"), answers.get("rejected")
        if chosen is not None and chosen == rejected:
            self.errors.add(line, "rejected", "is the same answer as chosen; a pair needs two different answers")
        external_id = self._id(line, record.get("id"))
        margin = self._margin(line, record)
        if self.errors.count > before:
            return None
        if external_id is not None:
            key = _hash(["id", self.source, external_id])
        else:
            key = _hash(["pair", messages, chosen, rejected])
        return PairRow(line=line, messages=messages, chosen=chosen, rejected=rejected, margin=margin,
                       external_id=external_id, key=key)

    def _answer(self, line, field_name, value):
        """An answer: text, or a list of one or more assistant messages (joined by a blank line)."""
        if isinstance(value, str):
            return self._text(line, field_name, value)
        if not isinstance(value, list) or not value:
            self.errors.add(line, field_name, "must be text or a non-empty list of assistant messages")
            return None
        parts = []
        for i, message in enumerate(value):
            where = f"{field_name}[{i}]"
            if not isinstance(message, dict):
                self.errors.add(line, where, 'must be an object {"role": "assistant", "content"}')
                return None
            if message.get("role") != "assistant":
                self.errors.add(line, f"{where}.role", f"is {_brief(message.get('role'))}; an answer is the "
                                "assistant's (with a separate prompt, chosen and rejected hold only the answer)")
                return None
            content = self._text(line, f"{where}.content", message.get("content"))
            if content is None:
                return None
            parts.append(content)
        return self._text(line, field_name, "\n\n".join(parts))

    def _with_conversations(self, line, record):
        """A prompt, and chosen and rejected as whole conversations that repeat it (as `datasets`
        exports UltraFeedback binarized): the conversations decide, the prompt must agree."""
        explicit = self._prompt(line, record["prompt"])
        messages, answers = self._implicit(line, record["chosen"], record["rejected"])
        if explicit is None or messages is None:
            return None, {}
        if explicit != messages and not (isinstance(record["prompt"], str)
                                         and messages[-1]["content"] == record["prompt"]):
            self.errors.add(line, "prompt", "is not the conversation chosen and rejected share before their answers")
            return None, {}
        return messages, answers

    def _prompt(self, line, value):
        """An explicit prompt: text, or chat messages ending with the user's (non-empty) turn."""
        if isinstance(value, str):
            text = self._text(line, "prompt", value)
            return None if text is None else [{"role": "user", "content": text}]
        if not isinstance(value, list) or not value:
            self.errors.add(line, "prompt", "must be text or a non-empty list of chat messages")
            return None
        messages = self._conversation(line, "prompt", value)
        if messages is None:
            return None
        last = len(messages) - 1
        if messages[last]["role"] != "user":
            self.errors.add(line, f"prompt[{last}].role", "the last message must be the user's (the turn to answer)")
            return None
        if not messages[last]["content"].strip():
            self.errors.add(line, f"prompt[{last}].content", "is empty")
            return None
        return messages

    def _conversation(self, line, field_name, value):
        """A whole conversation: a list of messages, or an Anthropic transcript. An earlier turn may
        be empty (public transcripts have a few); the turn answered and the answers may not."""
        if isinstance(value, str):
            turns = _TRANSCRIPT_TURN.split("\n\n" + value.lstrip("\n"))
            if len(turns) < 3 or turns[0].strip():
                self.errors.add(line, "prompt", 'is missing: give "prompt", or chosen and rejected as whole '
                                'conversations (message lists, or "\\n\\nHuman: ...\\n\\nAssistant: ..." transcripts)')
                return None
            value = [{"role": "user" if who == "Human" else "assistant", "content": text.strip()}
                     for who, text in zip(turns[1::2], turns[2::2])]
        if not isinstance(value, list) or not value:
            self.errors.add(line, field_name, "must be a conversation (a non-empty list of chat messages)")
            return None
        messages = []
        for i, message in enumerate(value):
            where = f"{field_name}[{i}]"
            if not isinstance(message, dict):
                self.errors.add(line, where, 'must be an object {"role", "content"}')
                return None
            role = message.get("role")
            if role not in ROLES:
                self.errors.add(line, f"{where}.role", f"is {_brief(role)}; use one of {', '.join(ROLES)}")
                return None
            content = self._text(line, f"{where}.content", message.get("content"), required=False)
            if content is None:
                return None
            messages.append({"role": role, "content": content})
        return messages

    def _implicit(self, line, chosen, rejected):
        """(prompt messages, {"chosen": text, "rejected": text}) from two whole conversations: the
        prompt is the turns both share, up to and including the last user turn."""
        sides = {"chosen": self._conversation(line, "chosen", chosen)}
        if sides["chosen"] is None and isinstance(chosen, str) and isinstance(rejected, str):
            return None, {}  # "prompt is missing" said once
        sides["rejected"] = self._conversation(line, "rejected", rejected)
        if sides["chosen"] is None or sides["rejected"] is None:
            return None, {}
        shared = 0
        for a, b in zip(sides["chosen"], sides["rejected"]):
            if a != b:
                break
            shared += 1
        users = [i for i in range(shared) if sides["chosen"][i]["role"] == "user"]
        if not users:
            self.errors.add(line, "prompt", "is missing: chosen and rejected share no user turn to answer; give "
                            '"prompt"')
            return None, {}
        start = users[-1] + 1
        if not sides["chosen"][users[-1]]["content"].strip():
            self.errors.add(line, f"chosen[{users[-1]}].content", "is empty (the user's turn the answers answer)")
            return None, {}
        answers = {}
        for side, messages in sides.items():
            rest = messages[start:]
            if not rest:
                self.errors.add(line, side, "has no assistant turn after the prompt")
                return None, {}
            for i, message in enumerate(rest, start=start):
                if message["role"] != "assistant":
                    self.errors.add(line, f"{side}[{i}].role", "the two conversations differ before the last "
                                    "assistant turn; they must share the prompt")
                    return None, {}
            answers[side] = self._text(line, side, "\n\n".join(m["content"] for m in rest))
        return sides["chosen"][:start], answers

    def _id(self, line, value):
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        value = self._text(line, "id", value, limit=255)
        if value is None:
            return None
        if value in self.seen_ids:
            self.errors.add(line, "id", f"{_brief(value)} repeats line {self.seen_ids[value]}")
            return None
        self.seen_ids[value] = line
        return value

    def _number(self, line, field_name, value):
        if type(value) not in (int, float) or not math.isfinite(value):
            self.errors.add(line, field_name, "must be a number")
            return None
        return float(value)

    def _margin(self, line, record):
        if record.get("margin") is not None:
            margin = self._number(line, "margin", record["margin"])
            if margin is not None and margin < 0:
                self.errors.add(line, "margin", "is negative; chosen must be the better answer")
            return margin
        scores = {name: record.get(name) for name in ("score_chosen", "score_rejected")}
        given = [name for name, value in scores.items() if value is not None]
        if not given:
            return 1.0
        if len(given) == 1:
            other = "score_rejected" if given[0] == "score_chosen" else "score_chosen"
            self.errors.add(line, other, f"is missing ({given[0]} is given; the two come together)")
            return None
        chosen = self._number(line, "score_chosen", scores["score_chosen"])
        rejected = self._number(line, "score_rejected", scores["score_rejected"])
        if chosen is None or rejected is None:
            return None
        if chosen < rejected:
            self.errors.add(line, "score_chosen", f"is below score_rejected ({chosen:g} < {rejected:g}); chosen must "
                            "be the better answer")
            return None
        return chosen - rejected


def _whole_conversations(record) -> bool:
    """Whether chosen and rejected are message lists holding more than the assistant's answer."""
    sides = (record.get("chosen"), record.get("rejected"))
    return all(isinstance(side, list) for side in sides) and any(
        isinstance(m, dict) and m.get("role") != "assistant" for side in sides for m in side)


def _brief(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# --- writing -----------------------------------------------------------------------------------


def import_preferences(project: Project, data: bytes, *, source=None, filename=None, limit=None
                       ) -> PreferenceImportReport:
    """Check the whole file, then write its new pairs (with their prompts and candidates) in one
    transaction. `source` names the data (default: the file's name); `limit` reads the first N lines."""
    source = source_name(source, filename)
    rows, duplicates = read_preference_file(data, source=source, limit=check_limit(limit))
    report = write_pair_rows(project, rows, source=source)
    report.duplicate_lines_skipped = duplicates
    return report


def write_pair_rows(project: Project, rows: list[PairRow], *, source: str) -> PreferenceImportReport:
    report = PreferenceImportReport(source=source)
    try:
        with transaction.atomic():
            # One import per project at a time (as for prompts): a second one waits here, then sees
            # the first's pairs as known. NO KEY UPDATE: claims and submits do not wait for it.
            Project.objects.select_for_update(no_key=True).filter(pk=project.pk).values_list("pk").first()
            known = _existing(PreferencePair.objects.filter(project=project), "import_key", [r.key for r in rows])
            new_rows = [r for r in rows if r.key not in known]
            report.pairs_skipped_existing = len(rows) - len(new_rows)
            prompts, matched = _prompts(project, new_rows, report)
            answers = _candidates(project, new_rows, prompts, matched, source, report)
            pairs = []
            for row in new_rows:
                prompt_id, split = prompts[_hash(row.messages)]
                chosen, rejected = answers[(prompt_id, row.chosen)], answers[(prompt_id, row.rejected)]
                pairs.append(PreferencePair(
                    project=project, task=None, prompt_id=prompt_id, candidate_a_id=min(chosen, rejected),
                    candidate_b_id=max(chosen, rejected), chosen_id=chosen, rejected_id=rejected, votes_a=0,
                    votes_b=0, votes_tie=0, is_tie=False, agreement=1.0, margin=row.margin, is_gold=False,
                    split=split, source=source, external_id=row.external_id, import_key=row.key))
            _create(pairs)
    except IntegrityError:  # the safety net under the lock
        raise Conflict("Another import added some of these pairs at the same time. Nothing was imported; run the "
                       "import again (it skips pairs already imported).") from None
    report.pairs_created = len(pairs)
    return report


def _create(objects) -> None:
    """Insert new model instances of one model, setting their ids. On Postgres through COPY with
    ids drawn from the table's sequence first (several times faster than bulk_create's
    parameters for thousands of long texts); elsewhere bulk_create."""
    if not objects:
        return
    model = type(objects[0])
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objects, batch_size=BATCH_SIZE)
        return
    sql.copy_instances(objects)


def _existing(queryset, field, values) -> set:
    found = set()
    values = list(values)
    for start in range(0, len(values), 10000):
        found.update(queryset.filter(**{f"{field}__in": values[start:start + 10000]}).values_list(field, flat=True))
    return found


def _prompts(project, rows, report) -> tuple[dict, set]:
    """({hash of messages: (prompt id, split)} for the rows' prompts, the ids of those that existed):
    a prompt of the project with the same messages (created by an earlier preference import, or by
    any other means), else a new one."""
    wanted = {}
    for row in rows:
        wanted.setdefault(_hash(row.messages), row.messages)
    found = {}
    external_ids = [PROMPT_ID_PREFIX + h for h in wanted]
    for start in range(0, len(external_ids), 10000):  # bounded IN lists (parameter limits)
        for prompt_id, external_id, split in Prompt.objects.filter(
                project=project, external_id__in=external_ids[start:start + 10000]).values_list(
                "id", "external_id", "split"):
            found[external_id[len(PROMPT_ID_PREFIX):]] = (prompt_id, split)
    if len(found) < len(wanted):
        # Prompts written otherwise (the prompt import, the demo, the API) match by their messages.
        others = (Prompt.objects.filter(project=project).exclude(external_id__startswith=PROMPT_ID_PREFIX)
                  .order_by("id").values_list("id", "messages", "split"))
        for prompt_id, messages, split in others.iterator(chunk_size=2000):
            key = _hash([{"role": m.get("role"), "content": m.get("content")} for m in messages or []])
            if key in wanted and key not in found:
                found[key] = (prompt_id, split)
    report.prompts_matched = len(found)
    matched = list(found.values())
    new = []
    for key, messages in wanted.items():
        if key not in found:
            uid = uuid.uuid4()
            new.append(Prompt(uid=uid, project=project, messages=messages, external_id=PROMPT_ID_PREFIX + key,
                              source=report.source, split=stable_split(project.pk, uid, project.heldout_percent)))
    _create(new)
    for prompt in new:
        found[prompt.external_id[len(PROMPT_ID_PREFIX):]] = (prompt.pk, prompt.split)
    report.prompts_created = len(new)
    return found, {prompt_id for prompt_id, _ in matched}


def _candidates(project, rows, prompts, matched, source, report) -> dict:
    """{(prompt id, text): candidate id}: an answer the prompt already has (same text; only the
    `matched` prompts, which existed before this import, can have one), else a new external candidate."""
    needed = {}
    for row in rows:
        prompt_id = prompts[_hash(row.messages)][0]
        for text in (row.chosen, row.rejected):
            needed.setdefault((prompt_id, text), None)
    prompt_ids = sorted(matched)
    for start in range(0, len(prompt_ids), 5000):
        for cid, prompt_id, text in Candidate.objects.filter(prompt_id__in=prompt_ids[start:start + 5000]).order_by(
                "id").values_list("id", "prompt_id", "text"):
            if needed.get((prompt_id, text), 0) is None:
                needed[(prompt_id, text)] = cid
    new = [Candidate(prompt_id=prompt_id, text=text, external_source=source)
           for (prompt_id, text), cid in needed.items() if cid is None]
    _create(moderated(project, new))  # flagged like every other answer (the pairs still train: they are labelled)
    for candidate in new:
        needed[(candidate.prompt_id, candidate.text)] = candidate.pk
    report.candidates_created = len(new)
    return needed
