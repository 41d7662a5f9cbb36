"""Imports of the same file at the same time: one creates the prompts, the others wait for it and
skip them (201 each, never a 500), and every prompt exists once."""
import threading

import pytest
from django.db import connection

from labeling import importing
from labeling.models import ComparisonTask, Prompt
from tests.support.api import jsonl, token_client

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_serializes_concurrent_imports_of_the_same_ids(admin_user, make_project):
    project = make_project("Concurrent")
    body = jsonl(*({"prompt": f"Question {i}?", "external_id": f"q{i}", "candidates": ["yes", "no"]}
                   for i in range(1500)))
    answers, barrier = [], threading.Barrier(3)

    def post():
        try:
            client = token_client(admin_user)
            barrier.wait(timeout=30)
            response = client.post(f"/api/v1/projects/{project.slug}/import/", data=body,
                                   content_type="application/x-ndjson")
            answers.append((response.status_code, response.json()))
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(status for status, _ in answers) == [201, 201, 201], answers
    assert sorted(r["prompts_created"] for _, r in answers) == [0, 0, 1500]
    assert sorted(r["prompts_skipped_existing"] for _, r in answers) == [0, 1500, 1500]
    assert Prompt.objects.filter(project=project).count() == 1500
    assert ComparisonTask.objects.filter(project=project).count() == 1500


def test_it_answers_409_to_a_unique_violation_all_the_same(admin_api, project, monkeypatch):
    """The safety net under the lock: a duplicate id the import did not see coming (here, its
    lookup of known ids is made to miss) is a 409 and imports nothing, not a 500."""
    body = jsonl({"prompt": "A?", "external_id": "a"})
    assert admin_api.post(f"/api/v1/projects/{project.slug}/import/", data=body,
                          content_type="application/x-ndjson").status_code == 201
    monkeypatch.setattr(importing, "_known_external_ids", lambda project, ids: set())
    again = admin_api.post(f"/api/v1/projects/{project.slug}/import/", data=jsonl(
        {"prompt": "B?", "external_id": "b"}, {"prompt": "A?", "external_id": "a"}),
        content_type="application/x-ndjson")
    assert again.status_code == 409, again.content
    assert "run the import again" in again.json()["detail"]
    assert set(Prompt.objects.filter(project=project).values_list("external_id", flat=True)) == {"a"}
