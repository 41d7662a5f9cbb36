"""Imported answers and answers added through the API are moderated as generated ones are: the
project's rules give each its verdict, and a flagged one is hidden or shown with a warning."""
import pytest

from labeling.actions.assignments import assign_next
from labeling.models import Candidate, Project, Prompt
from tests.support.api import jsonl

pytestmark = pytest.mark.django_db


@pytest.fixture
def moderated_project(make_project, annotator):
    return make_project("Moderated", annotators=[annotator], moderation_blocklist=["darn"],
                        moderation_patterns=[r"\d{3}-\d{4}"], flagged_candidates=Project.FlaggedCandidates.HIDE,
                        mode=Project.Mode.RANKING, candidates_per_prompt=3)


def test_imported_candidates_are_moderated(admin_api, moderated_project, annotator):
    body = jsonl({"prompt": "Tell me", "candidates": ["Well darn it.", "Sure.", "Here you go."]})
    response = admin_api.post(f"/api/v1/projects/{moderated_project.slug}/import/", data=body,
                              content_type="application/x-ndjson")
    assert response.status_code == 201, response.content
    verdicts = {c.text: c for c in Candidate.objects.filter(prompt__project=moderated_project)}
    assert verdicts["Well darn it."].is_flagged
    assert verdicts["Well darn it."].moderation["filters"]["rules"]["reasons"] == ["blocklisted: darn"]
    assert not verdicts["Sure."].is_flagged and verdicts["Sure."].moderation["flagged"] is False
    # The project hides flagged answers: the annotator compares the other two.
    shown = assign_next(moderated_project, annotator).shown_order
    assert sorted(shown) == sorted([verdicts["Sure."].pk, verdicts["Here you go."].pk])


def test_candidates_added_through_the_api_are_moderated(admin_api, moderated_project):
    prompt = Prompt.objects.create(project=moderated_project, messages=[{"role": "user", "content": "Hi"}])
    flagged = admin_api.post("/api/v1/candidates/", {"prompt": prompt.pk, "text": "Call 555-1234",
                                                     "external_source": "sys"},
                             format="json")
    clean = admin_api.post("/api/v1/candidates/", {"prompt": prompt.pk, "text": "fine", "external_source": "sys"},
                           format="json")
    assert flagged.status_code == clean.status_code == 201
    assert flagged.json()["is_flagged"] is True and flagged.json()["moderation"]["flagged"] is True
    assert clean.json()["is_flagged"] is False
    assert Candidate.objects.get(pk=flagged.json()["id"]).is_flagged
