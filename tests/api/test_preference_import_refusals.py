"""The preference import refuses bad input as the prompt import does: every bad line named with
its field, a 4xx (never a 500), nothing written; and only staff may import."""
import gzip

import pytest
from django.test import override_settings

from labeling.models import Candidate, PreferencePair, Prompt
from tests.support.api import jsonl, post

pytestmark = pytest.mark.django_db

GOOD = {"prompt": "fine?", "chosen": "yes", "rejected": "no"}


BAD_LINES = [  # (line, field, words in the message)
    (b"{not json", "", "not valid JSON"),
    (b"[1, 2]", "", "JSON object"),
    (b'{"prompt": "q", "rejected": "no"}', "chosen", "missing"),
    (b'{"prompt": "q", "chosen": "same", "rejected": "same"}', "rejected", "same answer"),
    (b'{"prompt": "q", "chosen": "", "rejected": "no"}', "chosen", "empty"),
    (b'{"prompt": "q", "chosen": 3, "rejected": "no"}', "chosen", "text or a non-empty list"),
    (b'{"prompt": 3, "chosen": "a", "rejected": "b"}', "prompt", "text or a non-empty list"),
    (b'{"prompt": "q", "chosen": [{"role": "user", "content": "a"}], "rejected": "b"}', "chosen[0].role",
     "assistant"),
    (b'{"prompt": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "chosen": "a", '
     b'"rejected": "b"}', "prompt[1].role", "last message"),
    (b'{"prompt": [{"role": "user", "content": " "}], "chosen": "a", "rejected": "b"}', "prompt[0].content", "empty"),
    (b'{"chosen": [{"role": "user", "content": ""}, {"role": "assistant", "content": "a"}], '
     b'"rejected": [{"role": "user", "content": ""}, {"role": "assistant", "content": "b"}]}', "chosen[0].content",
     "empty"),
    (b'{"prompt": "q\\ud800", "chosen": "a", "rejected": "b"}', "", "surrogate"),  # orjson refuses it
    (b'{"prompt": "q", "chosen": "a\\u0000", "rejected": "b"}', "chosen", "NUL"),
    (b'{"prompt": "' + b"x" * 101 + b'", "chosen": "a", "rejected": "b"}', "prompt", "limit"),
    (b'{"chosen": "plain text", "rejected": "other"}', "prompt", "missing"),
    (b'{"chosen": [{"role": "user", "content": "q"}], "rejected": [{"role": "user", "content": "q"}, '
     b'{"role": "assistant", "content": "a"}]}', "chosen", "no assistant turn"),
    (b'{"chosen": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], '
     b'"rejected": [{"role": "user", "content": "other"}, {"role": "assistant", "content": "b"}]}', "prompt",
     "share no user turn"),
    (b'{"chosen": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}, '
     b'{"role": "user", "content": "more"}, {"role": "assistant", "content": "c"}], '
     b'"rejected": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "b"}]}', "chosen[2].role",
     "differ before the last assistant turn"),
    (b'{"prompt": "other", "chosen": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], '
     b'"rejected": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "b"}]}', "prompt",
     "not the conversation"),
    (b'{"prompt": "q", "chosen": "a", "rejected": "b", "margin": "big"}', "margin", "number"),
    (b'{"prompt": "q", "chosen": "a", "rejected": "b", "margin": -1}', "margin", "negative"),
    (b'{"prompt": "q", "chosen": "a", "rejected": "b", "score_chosen": 2}', "score_rejected", "missing"),
    (b'{"prompt": "q", "chosen": "a", "rejected": "b", "score_chosen": 2, "score_rejected": 7}', "score_chosen",
     "below"),
    (b'{"prompt": "q", "chosen": "a", "rejected": "b", "id": {"x": 1}}', "id", "text"),
    (b'{"prompt": "q", "chosen": "a", "rejected": "b", "id": "dup"}', "id", "repeats line 1"),
    (b'{"prompt": "caf\xe9", "chosen": "a", "rejected": "b"}', "", "UTF-8"),
]


@override_settings(RANKLOOP_IMPORT_MAX_TEXT_CHARS=100)
def test_a_bad_line_names_line_and_field_and_imports_nothing(admin_api, project):
    # One test over all the lines (each case costs a request, not a fresh database and users).
    for line, field, words in BAD_LINES:
        body = (jsonl({**GOOD, "id": "dup"}) + line + b"\n"
                + jsonl({"prompt": "also fine", "chosen": "a", "rejected": "b"}))
        response = post(admin_api, project, body)
        assert response.status_code == 400, (line, response.content)
        detail = response.json()
        assert "Line 2" in detail["detail"] and "Nothing was imported" in detail["detail"], line
        assert words.lower() in detail["detail"].lower(), (line, detail)
        assert (detail["errors"][0]["line"], detail["errors"][0]["field"]) == (2, field), (line, detail)
    assert not Prompt.objects.exists() and not Candidate.objects.exists() and not PreferencePair.objects.exists()


def test_every_bad_line_and_field_is_listed(admin_api, project):
    response = post(admin_api, project, jsonl({"prompt": "", "chosen": "a"}, GOOD, {"chosen": 1, "rejected": 2}))
    assert [(e["line"], e["field"]) for e in response.json()["errors"]] == [
        (1, "rejected"), (1, "prompt"), (3, "chosen"), (3, "rejected")]


def test_files_and_names_it_cannot_take_are_refused_clearly(admin_api, project):
    assert post(admin_api, project, b"\n\n").json()["detail"] == "The file has no preference pairs."
    assert "gzip" in post(admin_api, project, b"\x1f\x8bnot really").json()["detail"]
    with override_settings(RANKLOOP_IMPORT_MAX_LINES=2):
        response = post(admin_api, project, jsonl(GOOD, GOOD, GOOD))
        assert response.status_code == 400 and "more than 2 pairs" in response.json()["detail"]
        assert post(admin_api, project, jsonl(GOOD, GOOD, GOOD), query="?source=x&limit=2").status_code == 201
    with override_settings(RANKLOOP_IMPORT_MAX_BYTES=100):
        assert "limit is 100 bytes" in post(admin_api, project, jsonl(*[GOOD] * 5)).json()["detail"]
        bomb = gzip.compress(b" " * 10_000 + jsonl(GOOD))
        assert "once uncompressed" in post(admin_api, project, bomb).json()["detail"]
    no_name = post(admin_api, project, jsonl(GOOD), query="")
    assert no_name.status_code == 400 and "source" in no_name.json()["errors"]
    for bad in ("has,comma", "-dash-first", "x" * 101, "sp ace"):
        response = post(admin_api, project, jsonl(GOOD), query=f"?source={bad}")
        assert response.status_code == 400 and "source" in response.json()["errors"], bad
    assert post(admin_api, project, jsonl(GOOD), query="?source=x&limit=0").status_code == 400
    assert PreferencePair.objects.count() == 1  # only the limited import above


def test_only_staff_may_import(annotator_api, outsider_api, anon_api, project):
    body = jsonl(GOOD)
    assert post(annotator_api, project, body).status_code == 403  # a member of the project, not staff
    assert post(outsider_api, project, body).status_code == 403
    assert post(anon_api, project, body).status_code in (401, 403)
    assert not PreferencePair.objects.exists()
