"""Checking what an annotator (or a reviewer) sends against the task they were shown: the pure
rules, no database. Values are taken as sent, never coerced."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from django.conf import settings

from .errors import InvalidSubmission
from .models import Annotation, Project


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


@dataclass
class CleanSubmission:
    ranking: list
    pairwise_choice: str
    ratings: dict
    flags: dict
    rationale: str
    ideal_answer: str
    time_on_task_ms: int


def clean_submission(project: Project, shown_order: list, payload) -> CleanSubmission:
    """Validate a raw submit payload against what the annotator was shown.

    Values are taken as sent, never coerced: candidate ids are integers (or strings of digits,
    as in JSON object keys), scores and times whole numbers (`forms.submission_payload` turns the
    HTML form's strings of digits into them). Any other shape is an error on its field, and so is
    text Postgres cannot store (NUL, lone surrogates), so nothing reaches the database unchecked."""
    if not isinstance(payload, dict):
        raise InvalidSubmission("The submission must be a JSON object.")
    if project.mode == Project.Mode.DEMONSTRATION:
        return clean_demonstration(payload)
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
            ranking = check_ranking(ranking, shown, allow_ties=project.allow_ties)
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


def clean_demonstration(payload) -> CleanSubmission:
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


def check_ranking(ranking, shown, *, allow_ties):
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
            raise InvalidSubmission("Candidate ids must be integers.") from None
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
