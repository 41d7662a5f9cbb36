"""Preference export, streamed: rows are read in keyset pages (id > last id, LIMIT n) and
encoded with orjson page by page, so memory stays flat however large the dataset.

Formats: `standard` and `conversational` (TRL preference formats, one row per aggregated pair,
see labeling.formats), `raw` (one row per annotation: every annotator's tiers, ratings,
flags, rationale and time, the annotator pseudonymised) and `sft` (TRL's conversational SFT rows,
{"messages": [...prompt, {"role": "assistant", "content": reply}]}: demonstrations and the ideal
answers annotators rewrote, rejected ones left out). Every preference row says its `source`:
"labels" for pairs aggregated from annotations (and every raw row), "import:<name>" for imported
pairs."""
from __future__ import annotations

import hashlib
import hmac

import orjson
from django.conf import settings
from django.utils import timezone

from . import formats
from .errors import ExportError
from .models import Annotation, Candidate, ComparisonTask, PreferencePair, Project, Prompt
from .pair_filters import PairFilters

FORMATS = ("standard", "conversational", "raw", "sft")
PAGE_SIZE = 2000


def check_format(fmt) -> str:
    fmt = (fmt or "standard").lower()
    if fmt not in FORMATS:
        raise ExportError(f"Unknown export format {fmt!r}; use one of {', '.join(FORMATS)}.",
                          {"format": f"One of {', '.join(FORMATS)}."})
    return fmt


def export_filename(project: Project, fmt: str) -> str:
    return f"{project.slug}-preferences-{fmt}-{timezone.now():%Y%m%d-%H%M%S}.jsonl"


def pseudonym(user_id: int) -> str:
    """A stable stand-in for an annotator: the same person has the same pseudonym in every
    export, and nobody without the SECRET_KEY can map it back to the account."""
    digest = hmac.new(settings.SECRET_KEY.encode(), f"annotator:{user_id}".encode(), hashlib.sha256)
    return "annotator-" + digest.hexdigest()[:16]


def export_lines(project: Project, fmt: str, filters: PairFilters, *, page_size=PAGE_SIZE):
    """The export as an iterator of bytes chunks (one per keyset page) of JSON Lines."""
    fmt = check_format(fmt)
    if fmt in ("raw", "sft"):
        dumps = orjson.dumps
        for rows in (_raw_pages if fmt == "raw" else _sft_pages)(project, filters, page_size):
            yield b"\n".join(dumps(row) for row in rows) + b"\n"
        return
    # Each prompt and answer recurs in several pairs: encode it once per page and splice the
    # encoded pieces into each row (the same bytes orjson gives for formats.*_row).
    dumps = orjson.dumps
    for page, prompts, texts in _pair_pages(project, filters, page_size):
        if fmt == "standard":
            prompt_json = {pid: dumps(formats.prompt_as_text(m)) for pid, m in prompts.items()}
            text_json = {cid: dumps(t) for cid, t in texts.items()}
        else:
            prompt_json = {pid: dumps(m) for pid, m in prompts.items()}
            text_json = {cid: b'[{"role":"assistant","content":' + dumps(t) + b"}]" for cid, t in texts.items()}
        yield b"".join(
            b'{"id":%b,"prompt":%b,"chosen":%b,"rejected":%b,"margin":%b,"source":%b}\n' % (
                dumps(formats.pair_id(pk)), prompt_json[prompt_id], text_json[chosen], text_json[rejected],
                dumps(margin), dumps(source))
            for pk, prompt_id, chosen, rejected, margin, source in page)


def export_rows(project: Project, fmt: str, filters: PairFilters, *, page_size=PAGE_SIZE):
    """The same rows as dicts (for Python callers and tests)."""
    fmt = check_format(fmt)
    if fmt in ("raw", "sft"):
        for rows in (_raw_pages if fmt == "raw" else _sft_pages)(project, filters, page_size):
            yield from rows
        return
    make_row = formats.standard_row if fmt == "standard" else formats.conversational_row
    for page, prompts, texts in _pair_pages(project, filters, page_size):
        for pk, prompt_id, chosen, rejected, margin, source in page:
            yield make_row(pk, prompts[prompt_id], texts[chosen], texts[rejected], margin, source)


def _pair_pages(project, filters, page_size):
    """Keyset pages of (pair id, prompt id, chosen id, rejected id, margin, source), each with the
    messages of its prompts and the texts of their candidates (fetched once per page)."""
    pairs = filters.pairs(project)
    last = 0
    while True:
        page = list(pairs.filter(id__gt=last).values_list(
            "id", "prompt_id", "chosen_id", "rejected_id", "margin", "source")[:page_size])
        if not page:
            return
        last = page[-1][0]
        prompt_ids = {row[1] for row in page}
        prompts = dict(Prompt.objects.filter(id__in=prompt_ids).order_by().values_list("id", "messages"))
        texts = dict(Candidate.objects.filter(prompt_id__in=prompt_ids).order_by().values_list("id", "text"))
        yield page, prompts, texts


def _raw_pages(project, filters, page_size):
    if filters.sources and PreferencePair.LABELS not in filters.sources:
        return  # raw rows are annotations: their source is "labels"
    annotations = Annotation.objects.filter(task__project=project)
    if filters.rounds:
        annotations = annotations.filter(task__round_number__in=filters.rounds)
    if not filters.include_gold:
        annotations = annotations.filter(task__is_gold=False)
    if filters.split:
        annotations = annotations.filter(task__prompt__split=filters.split)
    through = ComparisonTask.candidates.through
    last = 0
    while True:
        page = list(annotations.filter(id__gt=last).order_by("id").values_list(
            "id", "task_id", "task__prompt_id", "task__prompt__messages", "task__prompt__split", "task__is_gold",
            "task__round_number", "annotator_id", "ranking", "pairwise_choice", "ratings", "flags", "rationale",
            "ideal_answer", "time_on_task_ms", "created_at", "assignment__shown_order")[:page_size])
        if not page:
            return
        last = page[-1][0]
        candidates = {}
        for task_id, cid, text, source, model in through.objects.filter(
                comparisontask_id__in={row[1] for row in page}).order_by("candidate_id").values_list(
                "comparisontask_id", "candidate_id", "candidate__text", "candidate__external_source",
                "candidate__model_version__name"):
            candidates.setdefault(task_id, []).append(
                {"id": cid, "text": text, "origin": model or source or "hand-written"})
        yield [{
            "id": f"annotation-{pk}", "task_id": task_id, "prompt_id": prompt_id, "prompt": messages,
            "candidates": candidates.get(task_id, []), "shown_order": shown_order,
            "annotator": pseudonym(annotator_id), "ranking": ranking, "pairwise_choice": choice or None,
            "ratings": ratings, "flags": flags, "rationale": rationale, "ideal_answer": ideal_answer,
            "time_on_task_ms": time_ms, "created_at": created_at.isoformat(), "round": round_number,
            "split": split, "is_gold": is_gold, "source": PreferencePair.LABELS,
        } for (pk, task_id, prompt_id, messages, split, is_gold, round_number, annotator_id, ranking, choice,
               ratings, flags, rationale, ideal_answer, time_ms, created_at, shown_order) in page]


def sft_annotations(project, filters):
    """Annotations that carry a reply to learn from: a demonstration, or an ideal answer rewritten
    beside a ranking; not rejected by a reviewer, gold only when asked for."""
    annotations = Annotation.objects.filter(task__project=project, is_rejected=False).exclude(ideal_answer="")
    if filters.rounds:
        annotations = annotations.filter(task__round_number__in=filters.rounds)
    if not filters.include_gold:
        annotations = annotations.filter(task__is_gold=False)
    if filters.split:
        annotations = annotations.filter(task__prompt__split=filters.split)
    return annotations


def _sft_pages(project, filters, page_size):
    annotations, last = sft_annotations(project, filters), 0
    while True:
        page = list(annotations.filter(id__gt=last).order_by("id")
                    .values_list("id", "task__prompt__messages", "ideal_answer")[:page_size])
        if not page:
            return
        last = page[-1][0]
        yield [{"messages": [*messages, {"role": "assistant", "content": reply}]} for _, messages, reply in page]
