"""An annotator works through the API with a token: next task, submit, skip, own history."""
import pytest

from labeling.models import Annotation, PreferencePair

pytestmark = pytest.mark.django_db


def test_next_submit_skip_and_history(annotator_api, project, make_tasks):
    make_tasks(project, 2)
    response = annotator_api.post(f"/api/v1/projects/{project.slug}/next-task/")
    assert response.status_code == 200
    first = response.json()
    assert first["status"] == "leased" and first["prompt"][0]["role"] == "user"
    assert [c["id"] for c in first["candidates"]] == first["shown_order"]
    assert "origin" not in first["candidates"][0]
    # Asking again returns the same live lease.
    assert annotator_api.post(f"/api/v1/projects/{project.slug}/next-task/").json()["id"] == first["id"]
    a, b = first["shown_order"]
    submitted = annotator_api.post(f"/api/v1/assignments/{first['id']}/submit/",
                                   {"choice": "b", "rationale": "B is clearer", "time_on_task_ms": 900},
                                   format="json")
    assert submitted.status_code == 201, submitted.content
    assert submitted.json()["ranking"] == [[b], [a]]
    # An idempotent repeat.
    again = annotator_api.post(f"/api/v1/assignments/{first['id']}/submit/", {"choice": "b"}, format="json")
    assert again.status_code == 201 and again.json()["id"] == submitted.json()["id"]
    assert PreferencePair.objects.get(project=project).chosen_id == b

    second = annotator_api.post(f"/api/v1/projects/{project.slug}/next-task/").json()
    assert second["id"] != first["id"]
    skipped = annotator_api.post(f"/api/v1/assignments/{second['id']}/skip/")
    assert skipped.status_code == 200 and skipped.json()["status"] == "skipped"
    assert annotator_api.post(f"/api/v1/projects/{project.slug}/next-task/").status_code == 204

    mine = annotator_api.get("/api/v1/assignments/").json()
    assert [r["id"] for r in mine["results"]] == [first["id"], second["id"]]
    assert mine["results"][0]["annotation"]["rationale"] == "B is clearer"
    assert annotator_api.get("/api/v1/assignments/?status=skipped").json()["results"][0]["id"] == second["id"]


def test_bad_submissions_are_clear_400_or_409(annotator_api, project, make_tasks):
    make_tasks(project, 1)
    assignment = annotator_api.post(f"/api/v1/projects/{project.slug}/next-task/").json()
    url = f"/api/v1/assignments/{assignment['id']}/submit/"
    response = annotator_api.post(url, {"ranking": [[999999], [1]]}, format="json")
    assert response.status_code == 400 and "Unknown candidate ids" in response.json()["detail"]
    response = annotator_api.post(url, {"rationale": "nul\x00"}, format="json")
    assert response.status_code == 400
    assert annotator_api.post(url, {"choice": "a"}, format="json").status_code == 201
    conflict = annotator_api.post(url, {"choice": "b"}, format="json")
    assert conflict.status_code == 409 and "already submitted" in conflict.json()["detail"]
    assert Annotation.objects.count() == 1


def test_cursor_pagination_is_stable_under_inserts(admin_api, project, make_tasks):
    make_tasks(project, 5)
    page = admin_api.get("/api/v1/tasks/?page_size=2").json()
    seen = [t["id"] for t in page["results"]]
    make_tasks(project, 3)  # written between page requests
    while page["next"]:
        page = admin_api.get(page["next"]).json()
        seen += [t["id"] for t in page["results"]]
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == 8
