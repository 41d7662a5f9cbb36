"""Imports of the same preference file at the same time: one writes the pairs, the others wait
for it and skip them (201 each, never a 500), and every pair, prompt and answer exists once."""
import threading

import pytest
from django.db import connection

from labeling import preference_import
from labeling.models import Candidate, PreferencePair, Prompt
from tests.support.api import jsonl, token_client

pytestmark = pytest.mark.django_db(transaction=True)


def test_concurrent_imports_of_one_file_write_each_pair_once(admin_user, make_project):
    project = make_project("Concurrent seeding")
    body = jsonl(*({"prompt": f"Question {i // 2}?", "chosen": f"good {i}", "rejected": f"bad {i}"}
                   for i in range(600)))
    answers, barrier = [], threading.Barrier(3)

    def post():
        try:
            client = token_client(admin_user)
            barrier.wait(timeout=30)
            response = client.post(f"/api/v1/projects/{project.slug}/preferences/import/?source=same",
                                   data=body, content_type="application/x-ndjson")
            answers.append((response.status_code, response.json()))
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(status for status, _ in answers) == [201, 201, 201], answers
    assert sorted(r["pairs_created"] for _, r in answers) == [0, 0, 600]
    assert PreferencePair.objects.filter(project=project).count() == 600
    assert Prompt.objects.filter(project=project).count() == 300
    assert Candidate.objects.filter(prompt__project=project).count() == 1200


def test_a_unique_violation_is_a_409_all_the_same(admin_api, make_project, monkeypatch):
    """The safety net under the lock: a pair the import did not see coming (its lookup of known
    pairs is made to miss) is a 409 and imports nothing, not a 500."""
    project = make_project("Net")
    url = f"/api/v1/projects/{project.slug}/preferences/import/?source=net"
    body = jsonl({"prompt": "A?", "chosen": "x", "rejected": "y"})
    assert admin_api.post(url, data=body, content_type="application/x-ndjson").status_code == 201
    monkeypatch.setattr(preference_import, "_existing", lambda queryset, field, values: set())
    again = admin_api.post(url, data=jsonl({"prompt": "B?", "chosen": "x", "rejected": "y"},
                                           {"prompt": "A?", "chosen": "x", "rejected": "y"}),
                           content_type="application/x-ndjson")
    assert again.status_code == 409, again.content
    assert "run the import again" in again.json()["detail"]
    assert PreferencePair.objects.filter(project=project).count() == 1
    assert not Prompt.objects.filter(project=project, messages__0__content="B?").exists()
