"""The admin API's writes go through labeling.actions: its serializers check and shape, and never
write themselves."""
import pytest

from labeling.models import Candidate, Project, Prompt
from labeling.serializers import CandidateSerializer, ProjectSerializer, PromptSerializer

pytestmark = pytest.mark.django_db


def test_a_project_is_created_and_changed_through_the_api(admin_api, admin_user):
    created = admin_api.post("/api/v1/projects/", {"name": "Fresh one", "overlap": 3}, format="json")
    assert created.status_code == 201, created.content
    project = Project.objects.get(pk=created.json()["id"])
    assert (project.slug, project.overlap, project.created_by) == ("fresh-one", 3, admin_user)
    assert created.json()["slug"] == "fresh-one"

    changed = admin_api.patch(f"/api/v1/projects/{project.slug}/", {"name": "Renamed", "overlap": 2}, format="json")
    assert changed.status_code == 200, changed.content
    project.refresh_from_db()
    assert (project.name, project.overlap, project.slug) == ("Renamed", 2, "fresh-one")  # the slug stays
    assert changed.json()["name"] == "Renamed"


def test_a_prompt_is_created_and_deleted_and_a_candidate_added_through_the_api(admin_api, project):
    created = admin_api.post("/api/v1/prompts/", {"project": project.slug, "messages": "Hi?", "external_id": "p-1",
                                                  "tags": ["greeting"]}, format="json")
    assert created.status_code == 201, created.content
    prompt = Prompt.objects.get(pk=created.json()["id"])
    assert (prompt.messages, prompt.external_id, prompt.tags) == ([{"role": "user", "content": "Hi?"}], "p-1",
                                                                   ["greeting"])
    assert created.json()["split"] == prompt.split

    added = admin_api.post("/api/v1/candidates/", {"prompt": prompt.pk, "text": "Hello!", "external_source": "sys",
                                                   "external_id": "c-1"}, format="json")
    assert added.status_code == 201, added.content
    candidate = Candidate.objects.get(pk=added.json()["id"])
    assert (candidate.prompt, candidate.text, candidate.external_source, candidate.external_id) == (
        prompt, "Hello!", "sys", "c-1")

    assert admin_api.delete(f"/api/v1/prompts/{prompt.pk}/").status_code == 204
    assert not Prompt.objects.filter(pk=prompt.pk).exists() and not Candidate.objects.filter(pk=candidate.pk).exists()


@pytest.mark.parametrize("serializer_class", [ProjectSerializer, PromptSerializer, CandidateSerializer])
def test_the_serializers_never_write(serializer_class):
    serializer = serializer_class()
    with pytest.raises(NotImplementedError):
        serializer.create({})
    with pytest.raises(NotImplementedError):
        serializer.update(None, {})
