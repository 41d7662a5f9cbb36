"""Turning the annotator page's POST into the payload `actions.annotations.submit_annotation` validates,
and the staff project page's preference import form."""
import json

from django import forms

from .errors import InvalidSubmission

RATING_PREFIX = "rating-"  # rating-<candidate id>-<aspect>
FLAG_PREFIX = "flag-"  # flag-<candidate id>, one value per ticked flag


def _form_integer(value):
    """A form posts text: a string of ASCII digits is that integer; anything else is left as it
    is, for the service to refuse (it takes integers only, never coerces 3.7 or " 3")."""
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return value


def submission_payload(post) -> dict:
    """The raw payload from a form POST. Only the shape is checked here (JSON parses) and
    strings of digits become integers; what the values mean against the task is the service's job."""
    payload = {
        "choice": post.get("choice", ""),
        "rationale": post.get("rationale", ""),
        "ideal_answer": post.get("ideal_answer", ""),
        "time_on_task_ms": _form_integer(post.get("time_on_task_ms") or 0),
    }
    raw_ranking = post.get("ranking", "").strip()
    if raw_ranking and not payload["choice"]:
        try:
            payload["ranking"] = json.loads(raw_ranking)
        except ValueError:
            raise InvalidSubmission(
                "The ranking is not valid JSON; expected a list of tiers of candidate ids.") from None
    ratings, flags = {}, {}
    for key in post:
        if key.startswith(RATING_PREFIX):
            candidate, _, aspect = key[len(RATING_PREFIX):].partition("-")
            if post.get(key):
                ratings.setdefault(candidate, {})[aspect] = _form_integer(post.get(key))
        elif key.startswith(FLAG_PREFIX):
            flags[key[len(FLAG_PREFIX):]] = post.getlist(key)
    payload["ratings"] = ratings
    payload["flags"] = flags
    return payload


class PreferenceImportForm(forms.Form):
    """The upload; what the file holds is checked by labeling.preference_import."""

    file = forms.FileField(help_text="TRL preference JSON Lines (.jsonl or .jsonl.gz): standard, conversational or "
                           "implicit prompt, e.g. what datasets exports for HH-RLHF or UltraFeedback.")
    source = forms.CharField(required=False, max_length=120,
                             help_text="Its name, e.g. hh-rlhf (default: the file's name); the pairs' source is "
                             "import:NAME.")
    limit = forms.IntegerField(required=False, min_value=1, help_text="Import the first N lines only.")
