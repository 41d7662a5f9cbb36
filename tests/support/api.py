"""API helpers: token-authenticated clients, JSON Lines bodies, ranking every task, reading an export."""
import orjson
from django.http import StreamingHttpResponse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from labeling.actions.annotations import submit_annotation
from labeling.actions.assignments import assign_next


def token_client(user=None):
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def jsonl(*rows):
    return b"\n".join(orjson.dumps(r) for r in rows) + b"\n"


def rank_all(project, annotator, order=lambda ids: sorted(ids), payload_extra=None):
    """The annotator ranks every task they get: candidates in `order` of their ids."""
    while (assignment := assign_next(project, annotator)) is not None:
        ranking = [[c] for c in order(assignment.shown_order)]
        submit_annotation(assignment.pk, annotator, {"ranking": ranking, **(payload_extra or {})})


def read_export(client, project, query=""):
    response = client.get(f"/api/v1/projects/{project.slug}/export/{query}")
    assert response.status_code == 200, getattr(response, "content", b"")
    assert isinstance(response, StreamingHttpResponse)
    body = b"".join(response.streaming_content)
    return response, [orjson.loads(line) for line in body.splitlines()]


def post(client, project, body, query="?source=public", content_type="application/x-ndjson"):
    return client.post(f"/api/v1/projects/{project.slug}/preferences/import/{query}", data=body,
                       content_type=content_type)
