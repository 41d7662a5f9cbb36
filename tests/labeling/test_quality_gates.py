"""Quality gates: a qualification set of gold tasks before real work, and an automatic pause when
gold accuracy falls below the project's threshold; the reason is shown to the annotator and staff,
and staff reinstate."""
import html

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from labeling.actions.annotations import submit_annotation
from labeling.actions.assignments import assign_next
from labeling.errors import Paused
from labeling.models import Assignment, Membership
from labeling.queries import excluded_annotation_counts
from tests.support.quality import answer, make_gold


def test_a_careless_annotator_is_paused_after_n_gold_tasks(make_project, make_tasks, make_user):
    careful, careless = make_user("careful"), make_user("careless")
    project = make_project(annotators=[careful, careless], gold_share=0.5, gold_min_accuracy=0.7, gold_min_tasks=4)
    make_tasks(project, 40)
    make_gold(project, 20)
    for user, right in ((careful, True), (careless, False)):
        for _ in range(30):
            assignment = assign_next(project, user)
            answer(assignment, user, right=right)
            if Membership.objects.get(project=project, user=user).paused_at:
                break
    assert Membership.objects.get(project=project, user=careful).paused_at is None
    membership = Membership.objects.get(project=project, user=careless)
    assert membership.paused_at is not None and membership.gate_gold_done == 4
    assert "0% (0 of 4), below this project's 70%" in membership.paused_reason
    with pytest.raises(Paused, match="accuracy on gold tasks is 0%"):
        assign_next(project, careless)
    assert not Assignment.objects.filter(annotator=careless, status=Assignment.Status.LEASED).exists()


def test_qualification_serves_only_gold_until_passed(make_project, make_tasks, annotator):
    project = make_project(annotators=[annotator], qualification_tasks=3, qualification_pass=0.6)
    make_tasks(project, 5)
    make_gold(project, 5)
    served = []
    for right in (True, False, True):  # 2 of 3 right: passes at 0.6
        assignment = assign_next(project, annotator)
        served.append(assignment.task.is_gold)
        answer(assignment, annotator, right=right)
    assert served == [True, True, True]
    assert Membership.objects.get(project=project, user=annotator).qualified_at is not None
    assert not assign_next(project, annotator).task.is_gold  # real work now (gold_share 0)


def test_failing_the_qualification_pauses_with_the_reason_on_the_page(client, make_project, make_tasks, annotator):
    project = make_project(annotators=[annotator], qualification_tasks=2, qualification_pass=1.0)
    make_tasks(project, 3)
    make_gold(project, 3)
    for right in (True, False):
        answer(assign_next(project, annotator), annotator, right=right)
    client.force_login(annotator)
    response = client.get(reverse("labeling:annotate", args=[project.slug]))
    assert response.status_code == 403
    assert "You did not pass this project's qualification: 1 of 2 gold tasks right (50%)" in html.unescape(
        response.content.decode())
    api = APIClient()
    api.force_authenticate(annotator)
    body = api.post(f"/api/v1/projects/{project.slug}/next-task/").json()
    assert body["code"] == "paused" and "did not pass" in body["detail"]


def test_a_qualifying_annotator_with_no_gold_left_is_told_why(make_project, make_tasks, annotator):
    project = make_project(annotators=[annotator], qualification_tasks=3)
    make_tasks(project, 2)
    make_gold(project, 1)
    answer(assign_next(project, annotator), annotator)
    with pytest.raises(Paused, match="asks 3 gold tasks of a new annotator"):
        assign_next(project, annotator)


def test_staff_reinstate_a_paused_annotator(client, admin_user, make_project, make_tasks, annotator):
    project = make_project(annotators=[annotator], qualification_tasks=1, qualification_pass=1.0)
    make_tasks(project, 2)
    make_gold(project, 2)
    answer(assign_next(project, annotator), annotator, right=False)
    assert Membership.objects.get(project=project, user=annotator).paused_at is not None
    client.force_login(admin_user)
    page = client.get(reverse("labeling:project", args=[project.slug])).content.decode()
    assert "paused" in page and "Reinstate" in page
    response = client.post(reverse("labeling:reinstate", args=[project.slug, annotator.pk]), follow=True)
    assert "is reinstated" in response.content.decode()
    membership = Membership.objects.get(project=project, user=annotator)
    assert membership.paused_at is None and membership.gate_gold_done == 0 and membership.qualified_at
    assert not assign_next(project, annotator).task.is_gold


def test_reinstating_over_the_api_and_refusals(make_project, annotator, make_user, admin_user):
    project = make_project(annotators=[annotator])
    api = APIClient()
    api.force_authenticate(admin_user)
    url = f"/api/v1/projects/{project.slug}/reinstate/"
    assert api.post(url, {"username": annotator.username}, format="json").status_code == 409  # not paused
    assert api.post(url, {}, format="json").status_code == 400
    assert api.post(url, {"username": "nobody"}, format="json").status_code == 404
    Membership.objects.filter(project=project, user=annotator).update(paused_at="2026-01-01T00:00:00Z")
    api.force_authenticate(annotator)  # an annotator cannot reinstate anyone, themselves included
    assert api.post(url, {"username": annotator.username}, format="json").status_code in (403, 404)
    api.force_authenticate(admin_user)
    assert api.post(url, {"username": annotator.username}, format="json").status_code == 204


def test_a_paused_annotator_cannot_submit_an_old_lease(make_project, make_tasks, annotator):
    project = make_project(annotators=[annotator])
    make_tasks(project, 1)
    assignment = assign_next(project, annotator)
    from labeling import quality

    quality.pause_annotator(project, annotator, reason="Paused by staff for a check.")
    with pytest.raises(Paused, match="for a check"):
        submit_annotation(assignment.pk, annotator, {"choice": "a"})


def test_a_paused_annotators_labels_leave_the_pairs_until_reinstated(make_project, make_tasks, make_user, admin_user):
    good, careless = make_user("good"), make_user("sloppy")
    project = make_project(annotators=[good, careless], overlap=2, shuffle_positions=False,
                           exclude_paused_labels=True)
    tasks = make_tasks(project, 2)
    for user, choice in ((good, "a"), (careless, "b")):
        for _ in tasks:
            assignment = assign_next(project, user)
            submit_annotation(assignment.pk, user, {"choice": choice})
    from labeling import quality
    from labeling.models import PreferencePair

    assert set(PreferencePair.objects.values_list("is_tie", flat=True)) == {True}  # 1 vote each way
    quality.pause_annotator(project, careless, reason="Paused by staff.")
    pairs = PreferencePair.objects.select_related("task")
    assert all(not p.is_tie and p.votes_a == 1 and p.votes_b == 0 for p in pairs)
    assert excluded_annotation_counts(project) == {"rejected_by_review": 0, "paused_annotators": 2}
    api = APIClient()
    api.force_authenticate(admin_user)
    response = api.get(f"/api/v1/projects/{project.slug}/export/")
    assert response["X-Rankloop-Excluded-Annotations"] == "rejected_by_review=0, paused_annotators=2"
    quality.reinstate_annotator(project, careless)
    assert set(PreferencePair.objects.values_list("is_tie", flat=True)) == {True}
