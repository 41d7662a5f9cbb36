"""Moderation, as chat products run before showing text: a registry of filters, each giving a
verdict on one answer. The default is rule-based (the project's blocklist and regex patterns);
a classifier registers the same way. Settings MODERATION_FILTERS names the filters to run.

Pure text checks on the project's rules, so it lives in labeling: every new candidate is moderated
by labeling.actions.candidates (generated, imported or added through the API), and models_app
(the project's rules, generation) and serving (the chat's input and output) use it from here."""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from django.conf import settings

from rankloop.errors import InvalidInput

_FILTERS: dict = {}


@dataclass
class Verdict:
    flagged: bool
    reasons: list[str] = field(default_factory=list)
    score: float | None = None


def register_filter(name):
    """Class decorator: make a filter available under `name`. A filter has
    `check(project, text) -> Verdict`."""

    def register(cls):
        _FILTERS[name] = cls
        return cls

    return register


def available_filters() -> list[str]:
    return sorted(_FILTERS)


class ModerationConfigError(InvalidInput):
    """A blocklist or pattern that cannot be used; the message says which."""

    code = "invalid_moderation"


def clean_rules(blocklist, patterns) -> tuple[list[str], list[str]]:
    """Validated blocklist terms and regex patterns (stripped, empties dropped), or
    ModerationConfigError naming the bad pattern."""
    if not isinstance(blocklist, list) or not all(isinstance(t, str) for t in blocklist):
        raise ModerationConfigError("The blocklist must be a list of words or phrases.")
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        raise ModerationConfigError("The patterns must be a list of regular expressions.")
    terms = [t.strip() for t in blocklist if t.strip()]
    regexes = [p.strip() for p in patterns if p.strip()]
    for pattern in regexes:
        try:
            re.compile(pattern)
        except re.error as error:
            raise ModerationConfigError(f"Pattern {pattern!r} is not a valid regular expression: {error}.") from None
    return terms, regexes


@register_filter("rules")
class RuleFilter:
    """Flags an answer containing a blocklisted word or phrase (whole words, any case) or
    matching one of the project's regular expressions."""

    def check(self, project, text: str) -> Verdict:
        reasons = []
        for term in project.moderation_blocklist or []:
            if term.strip() and re.search(rf"(?<!\w){re.escape(term.strip())}(?!\w)", text, re.IGNORECASE):
                reasons.append(f"blocklisted: {term.strip()}")
        for pattern in project.moderation_patterns or []:
            try:
                if pattern.strip() and re.search(pattern, text, re.IGNORECASE):
                    reasons.append(f"pattern: {pattern}")
            except re.error:
                reasons.append(f"invalid pattern skipped: {pattern}")
        flagged = any(not r.startswith("invalid pattern") for r in reasons)
        return Verdict(flagged=flagged, reasons=reasons)

    def unfinished(self, project, text: str) -> int:
        """How many characters at the end of a text still being written could be the start of a
        blocklisted term (a word cut between two streamed pieces: "da" of "darn"), so that a
        stream holds them back until the next piece says. Patterns are not covered: a regular
        expression cannot say whether a prefix may still match."""
        lowered, held = text.lower(), 0
        for term in project.moderation_blocklist or []:
            term = term.strip().lower()
            for k in range(min(len(term), len(lowered)), held, -1):
                at = len(lowered) - k
                if term.startswith(lowered[at:]) and (at == 0 or not lowered[at - 1].isalnum()
                                                      and lowered[at - 1] != "_"):
                    held = k
                    break
        return held


def unfinished(project, text: str) -> int:
    """The characters at the end of `text` that the configured filters ask a stream to hold back
    (the most any asks; a filter without `unfinished` asks none)."""
    names = getattr(settings, "MODERATION_FILTERS", ["rules"])
    return max([getattr(_FILTERS[name](), "unfinished", lambda project, text: 0)(project, text)
                for name in names if name in _FILTERS] + [0])


def moderate(project, text: str) -> dict:
    """The combined verdict of the configured filters, as stored on a candidate:
    {"flagged": bool, "filters": {name: {"flagged", "reasons", "score"}}}."""
    names = getattr(settings, "MODERATION_FILTERS", ["rules"])
    verdicts = {}
    for name in names:
        if name not in _FILTERS:
            raise ModerationConfigError(f"Unknown moderation filter {name!r}; known: {', '.join(available_filters())}.")
        verdicts[name] = asdict(_FILTERS[name]().check(project, text))
    return {"flagged": any(v["flagged"] for v in verdicts.values()), "filters": verdicts}
