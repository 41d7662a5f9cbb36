"""Review and adjudication: what enters the queue, reviewers' decisions (accept, reject with a
note, final ranking overriding the majority), who may review, and annotators reading the notes on
their own rejected work only."""
import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from labeling import review
from labeling.actions.annotations import submit_annotation
from labeling.actions.assignments import assign_next
from labeling.actions.memberships import add_annotator
from labeling.actions.pairs import reaggregate_project
from labeling.errors import Conflict, InvalidSubmission
from labeling.models import Annotation, PreferencePair, ReviewItem


@pytest.fixture
def team(make_user):
    return {name: make_user(name) for name in ("ann1", "ann2", "ann3", "rev", "outsider")}


@pytest.fixture
def project(make_project, team):
    project = make_project(annotators=[team["ann1"], team["ann2"], team["ann3"]], overlap=3,
                           shuffle_positions=False, review_agreement_below=0.9)
    add_annotator(project, team["rev"], role="reviewer")
    return project


def label(project, user, choice, **extra):
    assignment = assign_next(project, user)
    return submit_annotation(assignment.pk, user, {"choice": choice, **extra})


def test_disagreement_flags_and_samples_enter_the_queue(project, team, make_tasks):
    (task,) = make_tasks(project, 1)
    candidate = task.candidates.order_by("id").first()
    label(project, team["ann1"], "a")
    label(project, team["ann2"], "a", flags={str(candidate.pk): ["harmful"]})
    assert list(ReviewItem.objects.values_list("reason", flat=True)) == ["flagged"]
    label(project, team["ann3"], "b")  # completes the task 2-1: agreement 0.67 < 0.9
    assert set(ReviewItem.objects.values_list("reason", flat=True)) == {"flagged", "low_agreement"}

    project.review_share, project.review_agreement_below = 1.0, None
    project.save()
    make_tasks(project, 1)
    label(project, team["ann1"], "a")
    assert ReviewItem.objects.filter(reason="sampled").count() == 1


def test_a_final_ranking_overrides_the_majority(project, team, make_tasks):
    (task,) = make_tasks(project, 1)
    first, second = task.candidates.order_by("id")
    for user, choice in (("ann1", "a"), ("ann2", "a"), ("ann3", "b")):
        label(project, team[user], choice)
    pair = PreferencePair.objects.get(task=task)
    assert pair.chosen_id == first.pk
    item = ReviewItem.objects.get(reason="low_agreement")
    review.decide(item.pk, team["rev"], decision="adjudicate", ranking=[[second.pk], [first.pk]])
    pair.refresh_from_db()
    assert (pair.chosen_id, pair.rejected_id) == (second.pk, first.pk)
    assert (pair.votes_a, pair.votes_b) == (2, 1)  # the votes stay the annotators'
    # and a later re-aggregation keeps the reviewer's ranking
    reaggregate_project(project)
    pair.refresh_from_db()
    assert pair.chosen_id == second.pk


def test_a_rejected_annotation_no_longer_counts_and_its_annotator_reads_the_note(project, team, make_tasks, client):
    project.review_share, project.review_agreement_below, project.overlap = 1.0, None, 1
    project.save()
    (task,) = make_tasks(project, 1)
    annotation = label(project, team["ann1"], "b")
    item = ReviewItem.objects.get(annotation=annotation)
    with pytest.raises(InvalidSubmission, match="Say why"):
        review.decide(item.pk, team["rev"], decision="reject", note="  ")
    review.decide(item.pk, team["rev"], decision="reject", note="Answer B invents a date.")
    assert Annotation.objects.get(pk=annotation.pk).is_rejected
    assert not PreferencePair.objects.filter(task=task).exists()
    # the same decision again is a no-op; a different one is a conflict
    review.decide(item.pk, team["rev"], decision="reject", note="Answer B invents a date.")
    with pytest.raises(Conflict):
        review.decide(item.pk, team["rev"], decision="accept")

    api = APIClient()
    api.force_authenticate(team["ann1"])
    notes = api.get(f"/api/v1/projects/{project.slug}/my-reviews/").json()
    assert [n["note"] for n in notes] == ["Answer B invents a date."]
    api.force_authenticate(team["ann2"])
    assert api.get(f"/api/v1/projects/{project.slug}/my-reviews/").json() == []
    client.force_login(team["ann1"])
    assert "Answer B invents a date." in client.get(reverse("labeling:annotate", args=[project.slug])).content.decode()
    client.force_login(team["ann2"])
    page = client.get(reverse("labeling:annotate", args=[project.slug])).content.decode()
    assert "Answer B invents a date." not in page


def test_who_may_review(project, team, make_tasks, make_project, admin_user):
    project.review_share = 1.0
    project.save()
    make_tasks(project, 1)
    annotation = label(project, team["ann1"], "a")
    item = ReviewItem.objects.get(annotation=annotation)
    api = APIClient()
    url = f"/api/v1/review-items/{item.pk}/decide/"
    api.force_authenticate(team["ann2"])  # an annotator posting a review
    assert api.post(url, {"decision": "accept"}, format="json").status_code == 403
    api.force_authenticate(team["ann1"])  # their own annotation, and they are no reviewer
    assert api.post(url, {"decision": "accept"}, format="json").status_code == 403
    other = make_project(name="Other")
    add_annotator(other, team["outsider"], role="reviewer")
    api.force_authenticate(team["outsider"])  # a reviewer of another project
    assert api.post(url, {"decision": "accept"}, format="json").status_code == 403
    assert api.get(f"/api/v1/projects/{project.slug}/review/next/").status_code == 404
    api.force_authenticate(team["rev"])
    for bad in ({"decision": "maybe"}, {"decision": "adjudicate", "ranking": [[1], [2]]},
                {"decision": "accept", "note": "x\x00y"}, {"decision": "accept", "note": "n" * 6000}):
        response = api.post(url, bad, format="json")
        assert response.status_code == 400, (bad, response.content)
    assert ReviewItem.objects.get(pk=item.pk).status == "open"
    assert api.get(f"/api/v1/projects/{project.slug}/review/next/").json()["id"] == item.pk
    assert api.post(url, {"decision": "accept"}, format="json").status_code == 200
    assert api.get(f"/api/v1/projects/{project.slug}/review/next/").status_code == 204
    api.force_authenticate(admin_user)
    assert api.post("/api/v1/review-items/999999/decide/", {"decision": "accept"}, format="json").status_code == 404


def test_the_review_page_records_a_final_ranking_by_letter(project, team, make_tasks, client):
    (task,) = make_tasks(project, 1)
    first, second = task.candidates.order_by("id")
    for user, choice in (("ann1", "a"), ("ann2", "a"), ("ann3", "b")):
        label(project, team[user], choice)
    client.force_login(team["rev"])
    page = client.get(reverse("labeling:review", args=[project.slug])).content.decode()
    assert "Annotators disagree" in page and "ann3</b>: B &gt; A" in page
    item = ReviewItem.objects.get(reason="low_agreement")
    url = reverse("labeling:review_decide", args=[project.slug, item.pk])
    bad = client.post(url, {"decision": "adjudicate", "ranking": "Z > A"})
    assert bad.status_code == 400 and "Use the letters A, B" in bad.content.decode()
    client.post(url, {"decision": "adjudicate", "ranking": "B > A"})
    assert PreferencePair.objects.get(task=task).chosen_id == second.pk
    client.force_login(team["ann1"])
    assert client.get(reverse("labeling:review", args=[project.slug])).status_code == 403
