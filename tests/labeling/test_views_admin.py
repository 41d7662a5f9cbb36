import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from labeling.actions.annotations import submit_annotation
from labeling.actions.assignments import assign_next
from labeling.models import Annotation, Assignment, Candidate, ComparisonTask, PreferencePair, Project, Prompt


@pytest.fixture
def superuser_client(client, db):
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "pw-for-tests-123"))
    return client


def test_every_labeling_model_has_working_admin_pages(superuser_client, make_project, make_tasks, annotator):
    project = make_project(annotators=[annotator])
    make_tasks(project, 1)
    assignment = assign_next(project, annotator)
    submit_annotation(assignment.pk, annotator, {"choice": "a"})
    for model in (Project, Prompt, Candidate, ComparisonTask, Assignment, Annotation, PreferencePair):
        admin_name = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        obj = model.objects.first()
        for url in (reverse(f"{admin_name}_changelist"), reverse(f"{admin_name}_change", args=[obj.pk])):
            response = superuser_client.get(url)
            assert response.status_code == 200, url
        assert superuser_client.get(reverse(f"{admin_name}_changelist"), {"q": "x"}).status_code == 200
    page = superuser_client.get(reverse("admin:labeling_project_change", args=[project.pk])).content.decode()
    assert "Membership" in page and annotator.username in page


def test_switching_a_membership_off_in_the_admin_ends_the_users_leases(superuser_client, make_project, make_tasks,
                                                                      annotator):
    project = make_project(annotators=[annotator])
    make_tasks(project, 1)
    lease = assign_next(project, annotator)
    url = reverse("admin:labeling_project_change", args=[project.pk])
    page = superuser_client.get(url)
    data = {}
    for name, bound in ((name, page.context["adminform"].form[name]) for name in page.context["adminform"].form.fields):
        value = bound.value()
        if isinstance(value, bool):
            if value:
                data[name] = "on"
        elif value is not None:
            data[name] = value
    inline = page.context["inline_admin_formsets"][0].formset
    prefix = inline.prefix
    membership = project.memberships.get()
    data.update({f"{prefix}-TOTAL_FORMS": "1", f"{prefix}-INITIAL_FORMS": "1", f"{prefix}-MIN_NUM_FORMS": "0",
                 f"{prefix}-MAX_NUM_FORMS": "1000", f"{prefix}-0-id": str(membership.pk),
                 f"{prefix}-0-project": str(project.pk), f"{prefix}-0-user": str(annotator.pk),
                 f"{prefix}-0-role": "annotator"})  # is_active unticked
    response = superuser_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    membership.refresh_from_db()
    assert not membership.is_active
    lease.refresh_from_db()
    assert lease.status == Assignment.Status.EXPIRED
    assert ComparisonTask.objects.get(pk=lease.task_id).leased == 0
