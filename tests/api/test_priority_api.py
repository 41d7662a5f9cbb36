"""Staff set where tasks stand in the queue: per import line or for the whole import, on task
create, and by PATCH on a task (its priority only). Higher priority is served first."""
import io

import pytest
from django.core.management import call_command

from labeling.models import Candidate, ComparisonTask, Prompt
from tests.support.api import jsonl

pytestmark = pytest.mark.django_db


def import_body(client, project, body, query="", content_type="application/x-ndjson"):
    return client.post(f"/api/v1/projects/{project.slug}/import/{query}", data=body, content_type=content_type)


def priorities(project):
    return dict(ComparisonTask.objects.filter(project=project).values_list("prompt__external_id", "priority"))


def test_it_imports_each_lines_priority_and_serves_the_highest_first(admin_api, annotator_api, project):
    old = import_body(admin_api, project, jsonl({"prompt": "Old?", "external_id": "old", "candidates": ["a", "b"]}))
    assert old.status_code == 201
    body = jsonl({"prompt": "Urgent?", "external_id": "urgent", "candidates": ["a", "b"], "priority": 10},
                 {"prompt": "Plain?", "external_id": "plain", "candidates": ["a", "b"]})
    assert import_body(admin_api, project, body).status_code == 201
    assert priorities(project) == {"old": 0, "urgent": 10, "plain": 0}
    served = annotator_api.post(f"/api/v1/projects/{project.slug}/next-task/").json()
    assert ComparisonTask.objects.get(pk=served["task"]).prompt.external_id == "urgent"


def test_it_takes_the_whole_files_priority_from_the_query_where_a_line_gives_none(admin_api, project):
    body = jsonl({"prompt": "A?", "external_id": "a", "candidates": ["x", "y"]},
                 {"prompt": "B?", "external_id": "b", "candidates": ["x", "y"], "priority": -2})
    assert import_body(admin_api, project, body, query="?priority=7").status_code == 201
    assert priorities(project) == {"a": 7, "b": -2}


def test_it_takes_the_priority_from_a_csv_column_and_a_multipart_field(admin_api, project):
    upload = io.BytesIO(b"prompt,external_id,priority,candidate_1,candidate_2\nOne?,c1,3,x,y\nTwo?,c2,,x,y\n")
    upload.name = "prompts.csv"
    response = admin_api.post(f"/api/v1/projects/{project.slug}/import/", {"file": upload, "priority": "1"},
                              format="multipart")
    assert response.status_code == 201, response.content
    assert priorities(project) == {"c1": 3, "c2": 1}


@pytest.mark.parametrize("line_priority", [1.5, True, "3", 40000, [1]])
def test_it_refuses_a_line_priority_that_is_not_a_whole_number_in_range(admin_api, project, line_priority):
    body = jsonl({"prompt": "A?", "candidates": ["x", "y"], "priority": line_priority})
    response = import_body(admin_api, project, body)
    assert response.status_code == 400, response.content
    assert response.json()["errors"][0]["field"] == "priority"
    assert not Prompt.objects.exists()


@pytest.mark.parametrize("query", ["?priority=high", "?priority=1.5", "?priority=99999"])
def test_it_refuses_a_files_priority_that_is_not_a_whole_number_in_range(admin_api, project, query):
    response = import_body(admin_api, project, jsonl({"prompt": "A?", "candidates": ["x", "y"]}), query=query)
    assert response.status_code == 400, response.content
    assert "priority" in response.json()["errors"]
    assert not Prompt.objects.exists()


def test_the_import_command_takes_a_priority(project, tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_bytes(jsonl({"prompt": "A?", "external_id": "a", "candidates": ["x", "y"]}))
    call_command("import_prompts", str(path), "--project", project.slug, "--priority", "4")
    assert priorities(project) == {"a": 4}


def test_it_creates_a_task_with_a_priority(admin_api, project):
    prompt = Prompt.objects.create(project=project, messages=[{"role": "user", "content": "Q?"}])
    ids = [Candidate.objects.create(prompt=prompt, text=t).pk for t in ("x", "y")]
    response = admin_api.post("/api/v1/tasks/", {"prompt": prompt.pk, "candidate_ids": ids, "priority": 9},
                              format="json")
    assert response.status_code == 201, response.content
    assert response.json()["priority"] == 9 and ComparisonTask.objects.get().priority == 9


def test_it_patches_a_tasks_priority_only(admin_api, annotator_api, project, make_tasks):
    first, second = make_tasks(project, 2)
    response = admin_api.patch(f"/api/v1/tasks/{second.pk}/", {"priority": 3, "overlap": 9, "status": "closed"},
                               format="json")
    assert response.status_code == 200, response.content
    second.refresh_from_db()
    assert second.priority == 3 and second.overlap == project.overlap and second.status == "open"
    assert annotator_api.post(f"/api/v1/projects/{project.slug}/next-task/").json()["task"] == second.pk
    assert admin_api.patch(f"/api/v1/tasks/{first.pk}/", {"priority": "x"}, format="json").status_code == 400
    assert admin_api.patch(f"/api/v1/tasks/{first.pk}/", {}, format="json").status_code == 400
    assert admin_api.put(f"/api/v1/tasks/{first.pk}/", {"priority": 1}, format="json").status_code == 405


def test_annotators_cannot_patch_a_task(annotator_api, project, make_tasks):
    (task,) = make_tasks(project, 1)
    assert annotator_api.patch(f"/api/v1/tasks/{task.pk}/", {"priority": 5}, format="json").status_code == 403
