"""Every endpoint tried as anonymous, as an annotator of another project, as the project's
annotator and as an admin."""
import pytest
from rest_framework.authtoken.models import Token

from labeling.actions.annotations import submit_annotation
from labeling.actions.assignments import assign_next
from labeling.models import Annotation, Assignment, Candidate, Prompt
from tests.support.api import jsonl, token_client

pytestmark = pytest.mark.django_db

ANON, OUTSIDER, ANNOTATOR, ADMIN = "anonymous", "outsider", "annotator", "admin"


@pytest.fixture
def world(make_project, make_tasks, annotator, outsider, admin_user):
    project = make_project("Main", annotators=[annotator])
    make_project("Elsewhere", annotators=[outsider])
    make_tasks(project, 3)
    done = assign_next(project, annotator)
    submit_annotation(done.pk, annotator, {"choice": "a"})
    leased = assign_next(project, annotator)
    return {"project": project, "done": done, "leased": leased,
            "prompt": Prompt.objects.filter(project=project).first(),
            "candidate": Candidate.objects.first(), "annotation": Annotation.objects.get(),
            "clients": {ANON: token_client(None), OUTSIDER: token_client(outsider),
                        ANNOTATOR: token_client(annotator), ADMIN: token_client(admin_user)}}


def endpoints(w):
    """(method, url, body, {role: expected status}) — admin-only endpoints are 401/403/403/2xx."""
    slug, leased, done = w["project"].slug, w["leased"].pk, w["done"].pk
    admin_only = {ANON: 401, OUTSIDER: 403, ANNOTATOR: 403}
    return [
        ("get", "/api/v1/projects/", None, {ANON: 401, OUTSIDER: 200, ANNOTATOR: 200, ADMIN: 200}),
        ("get", f"/api/v1/projects/{slug}/", None, {ANON: 401, OUTSIDER: 404, ANNOTATOR: 200, ADMIN: 200}),
        ("post", "/api/v1/projects/", {"name": "New one"}, {**admin_only, ADMIN: 201}),
        ("patch", f"/api/v1/projects/{slug}/", {"description": "x"}, {ANON: 401, OUTSIDER: 403, ANNOTATOR: 403,
                                                                    ADMIN: 200}),
        ("get", f"/api/v1/projects/{slug}/progress/", None, {**admin_only, ADMIN: 200}),
        ("post", f"/api/v1/projects/{slug}/annotators/", {"username": "outsider"}, {**admin_only, ADMIN: 204}),
        ("post", f"/api/v1/projects/{slug}/import/", jsonl({"prompt": "p?"}), {**admin_only, ADMIN: 201}),
        ("get", f"/api/v1/projects/{slug}/export/", None, {**admin_only, ADMIN: 200}),
        ("get", f"/api/v1/projects/{slug}/export/?format=raw", None, {**admin_only, ADMIN: 200}),
        ("get", "/api/v1/prompts/", None, {**admin_only, ADMIN: 200}),
        ("get", f"/api/v1/prompts/{w['prompt'].pk}/", None, {**admin_only, ADMIN: 200}),
        ("post", "/api/v1/prompts/", {"project": slug, "messages": "Hi?"}, {**admin_only, ADMIN: 201}),
        ("get", "/api/v1/candidates/", None, {**admin_only, ADMIN: 200}),
        ("post", "/api/v1/candidates/", {"prompt": w["prompt"].pk, "text": "ext", "external_source": "sys"},
         {**admin_only, ADMIN: 201}),
        ("get", "/api/v1/tasks/", None, {**admin_only, ADMIN: 200}),
        ("get", f"/api/v1/tasks/{w['leased'].task_id}/", None, {**admin_only, ADMIN: 200}),
        ("get", "/api/v1/annotations/", None, {**admin_only, ADMIN: 200}),
        ("get", f"/api/v1/annotations/{w['annotation'].pk}/", None, {**admin_only, ADMIN: 200}),
        ("get", "/api/v1/pairs/", None, {**admin_only, ADMIN: 200}),
        # The annotator's own work: others get 404 (they cannot even learn it exists).
        ("get", "/api/v1/assignments/", None, {ANON: 401, OUTSIDER: 200, ANNOTATOR: 200, ADMIN: 200}),
        ("get", f"/api/v1/assignments/{done}/", None, {ANON: 401, OUTSIDER: 404, ANNOTATOR: 200, ADMIN: 404}),
        ("post", f"/api/v1/assignments/{leased}/submit/", {"choice": "b"},
         {ANON: 401, OUTSIDER: 404, ANNOTATOR: 201, ADMIN: 404}),
        ("post", f"/api/v1/assignments/{leased}/skip/", None, {ANON: 401, OUTSIDER: 404, ANNOTATOR: 409, ADMIN: 404}),
        ("post", f"/api/v1/projects/{slug}/next-task/", None, {ANON: 401, OUTSIDER: 404, ANNOTATOR: 200,
                                                             ADMIN: 200}),
        ("post", f"/api/v1/tasks/{w['leased'].task_id}/close/", None, {**admin_only, ADMIN: 200}),
        ("get", "/api/v1/model-versions/", None, {**admin_only, ADMIN: 200}),
        ("post", "/api/v1/model-versions/", {"path": "/nonexistent", "kind": "policy"}, {**admin_only, ADMIN: 400}),
        ("get", "/api/v1/deployments/", None, {**admin_only, ADMIN: 200}),
        ("post", "/api/v1/deployments/rollback/", {"project": slug}, {**admin_only, ADMIN: 409}),
        ("get", "/api/v1/rounds/", None, {**admin_only, ADMIN: 200}),
        ("post", "/api/v1/rounds/", {"project": slug, "algorithm": "dpo"}, {**admin_only, ADMIN: 400}),
    ]


@pytest.mark.parametrize("role", [ANON, OUTSIDER, ANNOTATOR, ADMIN])
def test_every_endpoint_for_every_role(world, role):
    client = world["clients"][role]
    failures = []
    for method, url, body, expected in endpoints(world):
        if isinstance(body, bytes):
            response = getattr(client, method)(url, data=body, content_type="application/x-ndjson")
        else:
            response = getattr(client, method)(url, body, format="json")
        if response.status_code != expected[role]:
            failures.append(f"{method.upper()} {url}: {response.status_code}, expected {expected[role]}")
    assert not failures, "\n".join(failures)


def test_annotators_see_only_their_own_assignments(world, outsider, annotator):
    mine = world["clients"][ANNOTATOR].get("/api/v1/assignments/").json()["results"]
    assert {a["id"] for a in mine} == set(Assignment.objects.filter(annotator=annotator).values_list("id", flat=True))
    assert world["clients"][OUTSIDER].get("/api/v1/assignments/").json()["results"] == []
    projects = world["clients"][OUTSIDER].get("/api/v1/projects/").json()["results"]
    assert [p["slug"] for p in projects] == ["elsewhere"]
    assert "overlap" not in projects[0]  # annotators get the annotator's view of a project


def test_a_revoked_token_is_refused(world, annotator):
    client = world["clients"][ANNOTATOR]
    Token.objects.filter(user=annotator).delete()
    assert client.get("/api/v1/assignments/").status_code == 401


def test_throttles_per_token(world, monkeypatch):
    from rankloop.api_common import TokenRateThrottle

    monkeypatch.setattr(TokenRateThrottle, "THROTTLE_RATES", {"token": "3/min"})
    client = world["clients"][ANNOTATOR]
    codes = [client.get("/api/v1/assignments/").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    # Another token (another user) is not held back by that one.
    assert world["clients"][ADMIN].get("/api/v1/assignments/").status_code == 200
