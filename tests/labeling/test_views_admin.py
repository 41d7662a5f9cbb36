import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from labeling import services
from labeling.models import Annotation, Assignment, Candidate, ComparisonTask, PreferencePair, Project, Prompt


@pytest.fixture
def superuser_client(client, db):
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "pw-for-tests-123"))
    return client


def test_every_labeling_model_has_working_admin_pages(superuser_client, make_project, make_tasks, annotator):
    project = make_project(annotators=[annotator])
    make_tasks(project, 1)
    assignment = services.assign_next(project, annotator)
    services.submit_annotation(assignment.pk, annotator, {"choice": "a"})
    for model in (Project, Prompt, Candidate, ComparisonTask, Assignment, Annotation, PreferencePair):
        info = model._meta.app_label, model._meta.model_name
        obj = model.objects.first()
        for url in (reverse("admin:%s_%s_changelist" % info), reverse("admin:%s_%s_change" % info, args=[obj.pk])):
            response = superuser_client.get(url)
            assert response.status_code == 200, url
        assert superuser_client.get(reverse("admin:%s_%s_changelist" % info), {"q": "x"}).status_code == 200
    page = superuser_client.get(reverse("admin:labeling_project_change", args=[project.pk])).content.decode()
    assert "Membership" in page and annotator.username in page
