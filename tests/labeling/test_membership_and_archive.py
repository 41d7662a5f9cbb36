"""Who may still write: an annotator removed from a project loses their leases and can no longer
submit or skip; an archived project is read-only (409, nothing written)."""
import pytest

from labeling.actions.annotations import submit_annotation
from labeling.actions.assignments import assign_next, skip_task
from labeling.actions.memberships import add_annotator, remove_annotator
from labeling.errors import NotAllowed
from labeling.models import Annotation, Assignment, ComparisonTask, PreferencePair, Project
from tests.support.api import token_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(make_project, annotator):
    return make_project(annotators=[annotator])


@pytest.fixture
def leased(project, make_tasks, annotator):
    make_tasks(project, 2)
    return assign_next(project, annotator)


def nothing_written():
    return not Annotation.objects.exists() and not PreferencePair.objects.exists()


def test_it_ends_the_leases_of_a_removed_annotator(project, leased, annotator):
    remove_annotator(project, annotator)
    leased.refresh_from_db()
    assert leased.status == Assignment.Status.EXPIRED
    assert ComparisonTask.objects.get(pk=leased.task_id).leased == 0


def test_it_gives_a_removed_annotators_task_to_the_others(project, leased, annotator, make_user):
    other = make_user("other")
    add_annotator(project, other)
    remove_annotator(project, annotator)
    # The started task (the removed annotator's) is the first one served again.
    assert assign_next(project, other).task_id == leased.task_id


def test_it_refuses_a_submit_from_a_removed_annotator(project, leased, annotator):
    remove_annotator(project, annotator)
    with pytest.raises(NotAllowed, match="no longer an annotator"):
        submit_annotation(leased.pk, annotator, {"choice": "a"})
    assert nothing_written()


def test_it_refuses_a_submit_from_an_annotator_removed_after_the_lease_lapsed(project, leased, annotator):
    # Deactivated some other way (no lease ended): the submit itself checks membership.
    project.memberships.filter(user=annotator).update(is_active=False)
    with pytest.raises(NotAllowed):
        submit_annotation(leased.pk, annotator, {"choice": "a"})
    assert nothing_written()


def test_it_refuses_a_skip_from_a_removed_annotator(project, leased, annotator):
    project.memberships.filter(user=annotator).update(is_active=False)
    with pytest.raises(NotAllowed):
        skip_task(leased.pk, annotator)
    leased.refresh_from_db()
    assert leased.status == Assignment.Status.LEASED


def test_it_lets_staff_submit_without_a_membership(project, make_tasks, admin_user):
    make_tasks(project, 1)
    assignment = assign_next(project, admin_user)
    assert submit_annotation(assignment.pk, admin_user, {"choice": "a"}).pk


def test_it_answers_403_to_a_removed_annotators_api_submit(project, leased, annotator, admin_user):
    admin = token_client(admin_user)
    removed = admin.delete(f"/api/v1/projects/{project.slug}/annotators/", {"username": annotator.username},
                           format="json")
    assert removed.status_code == 204
    response = token_client(annotator).post(f"/api/v1/assignments/{leased.pk}/submit/", {"choice": "a"},
                                            format="json")
    assert response.status_code == 403, response.content
    assert "no longer an annotator" in response.json()["detail"]
    assert nothing_written()


def test_it_refuses_submit_and_skip_on_an_archived_project_over_the_api(project, leased, annotator):
    Project.objects.filter(pk=project.pk).update(is_archived=True)
    api = token_client(annotator)
    for action, body in (("submit", {"choice": "a"}), ("skip", None)):
        response = api.post(f"/api/v1/assignments/{leased.pk}/{action}/", body, format="json")
        assert response.status_code == 409, (action, response.content)
        assert "archived" in response.json()["detail"]
    leased.refresh_from_db()
    assert leased.status == Assignment.Status.LEASED
    assert nothing_written()
    assert api.post(f"/api/v1/projects/{project.slug}/next-task/").status_code == 404


def test_it_refuses_submit_and_skip_on_an_archived_project_in_the_browser(project, leased, annotator, client):
    from django.urls import reverse

    Project.objects.filter(pk=project.pk).update(is_archived=True)
    client.force_login(annotator)
    for name, data in (("labeling:submit", {"choice": "a"}), ("labeling:skip", {})):
        response = client.post(reverse(name, args=[project.slug, leased.pk]), data, headers={"HX-Request": "true"})
        assert response.status_code == 409, name
        assert "archived" in response.content.decode()
    leased.refresh_from_db()
    assert leased.status == Assignment.Status.LEASED
    assert nothing_written()
