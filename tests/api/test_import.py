"""Prompt import through the API: formats, validation naming line and field, all or nothing,
idempotent re-imports, limits."""
import io

import pytest
from django.test import override_settings

from labeling.models import Candidate, ComparisonTask, Prompt
from tests.support.api import jsonl

pytestmark = pytest.mark.django_db


def post_body(client, project, body, content_type="application/x-ndjson", query=""):
    return client.post(f"/api/v1/projects/{project.slug}/import/{query}", data=body, content_type=content_type)


def test_jsonl_body_imports_text_and_chat_prompts_with_candidates(admin_api, project):
    body = jsonl(
        {"prompt": "What is RLHF?", "external_id": "q1", "tags": ["ml"]},
        {"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}],
         "external_id": "q2", "candidates": ["Hello.", {"text": "Hi there!", "source": "gpt", "external_id": "c2"}]},
    )
    response = post_body(admin_api, project, body)
    assert response.status_code == 201, response.content
    assert response.json() == {"prompts_created": 2, "prompts_skipped_existing": 0,
                               "candidates_created": 2, "tasks_created": 1}
    q1 = Prompt.objects.get(project=project, external_id="q1")
    assert q1.messages == [{"role": "user", "content": "What is RLHF?"}]
    assert q1.tags == ["ml"] and q1.split in ("train", "heldout")
    task = ComparisonTask.objects.get(project=project)
    assert task.prompt.external_id == "q2" and task.overlap == project.overlap
    assert sorted(c.text for c in task.candidates.all()) == ["Hello.", "Hi there!"]
    assert Candidate.objects.get(external_id="c2").external_source == "gpt"


def test_reimport_adds_nothing_twice(admin_api, project):
    body = jsonl({"prompt": "A?", "external_id": "a", "candidates": ["x", "y"]}, {"prompt": "B?", "external_id": "b"})
    assert post_body(admin_api, project, body).status_code == 201
    again = post_body(admin_api, project, body)
    assert again.status_code == 201
    assert again.json()["prompts_created"] == 0 and again.json()["prompts_skipped_existing"] == 2
    assert Prompt.objects.filter(project=project).count() == 2
    assert ComparisonTask.objects.filter(project=project).count() == 1


def test_multipart_csv_upload(admin_api, project):
    csv_text = ("prompt,external_id,tags,candidate_1,candidate_2,candidate_source\n"
                "\"Name a colour, please\",c1,\"a,b\",Red,Blue,legacy-bot\n"
                "Another?,c2,,,,\n")
    upload = io.BytesIO(csv_text.encode())
    upload.name = "prompts.csv"
    response = admin_api.post(f"/api/v1/projects/{project.slug}/import/", {"file": upload}, format="multipart")
    assert response.status_code == 201, response.content
    assert response.json()["prompts_created"] == 2 and response.json()["tasks_created"] == 1
    prompt = Prompt.objects.get(external_id="c1")
    assert prompt.messages[0]["content"] == "Name a colour, please" and prompt.tags == ["a", "b"]
    assert set(prompt.candidates.values_list("external_source", flat=True)) == {"legacy-bot"}


def test_ranking_project_takes_per_task_k(admin_api, ranking_project):
    body = jsonl({"prompt": "Three?", "candidates": ["1", "2", "3"]},
                 {"prompt": "Five?", "candidates": ["1", "2", "3", "4", "5"]})
    assert post_body(admin_api, ranking_project, body).status_code == 201
    sizes = sorted(t.candidates.count() for t in ComparisonTask.objects.filter(project=ranking_project))
    assert sizes == [3, 5]


@pytest.mark.parametrize("line, field, words", [
    (b"{not json", "", "not valid JSON"),
    (b'{"external_id": "x"}', "prompt", "missing"),
    (b'{"prompt": [{"role": "robot", "content": "hi"}]}', "prompt[0].role", "robot"),
    (b'{"prompt": [{"role": "user", "content": "  "}]}', "prompt[0].content", "empty"),
    (b'{"prompt": "' + b"x" * 101 + b'"}', "prompt", "limit"),
    (b'{"prompt": "ok", "candidates": ["a", ""]}', "candidates[1].text", "empty"),
    (b'{"prompt": "ok", "candidates": ["a", "b", "c"]}', "candidates", "pairwise"),
    (b'{"prompt": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}',
     "prompt[1].role", "last message"),
    (b'{"prompt": "caf\xe9"}', "", "UTF-8"),
])
@override_settings(RANKLOOP_IMPORT_MAX_TEXT_CHARS=100)
def test_a_bad_line_names_line_and_field_and_imports_nothing(admin_api, project, line, field, words):
    body = jsonl({"prompt": "fine", "external_id": "ok1"}) + line + b"\n" + jsonl({"prompt": "also fine"})
    response = post_body(admin_api, project, body)
    assert response.status_code == 400, response.content
    detail = response.json()
    assert "Line 2" in detail["detail"] and "Nothing was imported" in detail["detail"]
    assert words.lower() in detail["detail"].lower()
    assert detail["errors"][0]["line"] == 2 and detail["errors"][0]["field"] == field
    assert not Prompt.objects.filter(project=project).exists()


def test_duplicate_external_id_in_one_file_is_refused(admin_api, project):
    response = post_body(admin_api, project,
                         jsonl({"prompt": "a", "external_id": "x"}, {"prompt": "b", "external_id": "x"}))
    assert response.status_code == 400
    assert response.json()["errors"][0] == {"line": 2, "field": "external_id", "message": "'x' repeats line 1"}


def test_every_bad_line_is_listed(admin_api, project):
    response = post_body(admin_api, project, jsonl({"prompt": ""}, {"prompt": "ok"}, {"nope": 1}))
    assert [e["line"] for e in response.json()["errors"]] == [1, 3]


def test_limits_have_clear_messages(admin_api, project):
    with override_settings(RANKLOOP_IMPORT_MAX_LINES=2):
        response = post_body(admin_api, project, jsonl({"prompt": "a"}, {"prompt": "b"}, {"prompt": "c"}))
        assert response.status_code == 400 and "more than 2 prompts" in response.json()["detail"]
    with override_settings(RANKLOOP_IMPORT_MAX_BYTES=10):
        response = post_body(admin_api, project, jsonl({"prompt": "a long enough prompt"}))
        assert "limit is 10 bytes" in response.json()["detail"]
    assert post_body(admin_api, project, b"\n\n").json()["detail"] == "The file has no prompts."
    assert not Prompt.objects.exists()


def test_csv_errors_name_line_and_field(admin_api, project):
    body = b'prompt,messages\nfine,\n,"[{""role"": ""user"", ""content"": """"}]"\n'
    response = post_body(admin_api, project, body, content_type="text/csv")
    assert response.status_code == 400
    assert response.json()["errors"][0] == {"line": 3, "field": "prompt[0].content", "message": "is empty"}


def test_management_command_uses_the_same_import(project, tmp_path):
    from django.core.management import call_command

    path = tmp_path / "p.jsonl"
    path.write_bytes(jsonl({"prompt": "cmd?", "external_id": "m1", "candidates": ["a", "b"]}))
    out = io.StringIO()
    call_command("import_prompts", str(path), "--project", project.slug, stdout=out)
    assert "1 prompts created" in out.getvalue()
    call_command("import_prompts", str(path), "--project", project.slug, stdout=out)
    assert Prompt.objects.filter(project=project).count() == 1


def test_session_user_can_import_a_plain_body(client, admin_user, project):
    """curl --data-binary sends form-encoded by default; the body is still read as the file."""
    client.force_login(admin_user)
    response = client.post(f"/api/v1/projects/{project.slug}/import/", data=jsonl({"prompt": "form?"}),
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 201, response.content
    assert Prompt.objects.get(project=project).messages[0]["content"] == "form?"
