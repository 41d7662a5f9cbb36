"""The submit and skip endpoints over HTTP: tampered or malformed posts get a clear 4xx and
change nothing."""
import json

import pytest
from django.urls import reverse

from labeling.actions.assignments import assign_next
from labeling.actions.memberships import add_annotator
from labeling.actions.tasks import close_task
from labeling.models import Annotation, Assignment, ComparisonTask, PreferencePair


@pytest.fixture
def project(make_project, annotator):
    return make_project(annotators=[annotator], mode="ranking", candidates_per_prompt=3, overlap=1,
                        allow_ties=False, rating_aspects=["helpful"], rating_scale=5)


@pytest.fixture
def leased(project, make_tasks, annotator):
    make_tasks(project, 2)
    return assign_next(project, annotator)


@pytest.fixture
def ann_client(client, annotator):
    client.force_login(annotator)
    return client


def submit_url(assignment):
    return reverse("labeling:submit", args=[assignment.project.slug, assignment.pk])


def post(client, assignment, ranking=None, htmx=True, **fields):
    data = dict(fields)
    if ranking is not None:
        data["ranking"] = ranking if isinstance(ranking, str) else json.dumps(ranking)
    headers = {"HX-Request": "true"} if htmx else {}
    return client.post(submit_url(assignment), data, headers=headers)


def assert_unchanged(assignment):
    assert not Annotation.objects.exists()
    assert not PreferencePair.objects.exists()
    status = assignment.status
    assignment.refresh_from_db()
    assert assignment.status == status
    task = ComparisonTask.objects.get(pk=assignment.task_id)
    assert task.annotations_done == 0


def test_valid_submit_stores_annotation_and_returns_next_task(ann_client, leased, annotator):
    order = leased.shown_order
    response = post(ann_client, leased, [[order[2]], [order[0]], [order[1]]], time_on_task_ms="4321",
                    rationale="C is right", **{f"rating-{order[2]}-helpful": "5", f"flag-{order[1]}": "off_topic"})
    assert response.status_code == 200
    annotation = Annotation.objects.get()
    assert annotation.ranking == [[order[2]], [order[0]], [order[1]]]
    assert annotation.time_on_task_ms == 4321
    assert annotation.ratings == {str(order[2]): {"helpful": 5}}
    assert annotation.flags == {str(order[1]): ["off_topic"]}
    assert annotation.rationale == "C is right"
    nxt = Assignment.objects.get(annotator=annotator, status="leased")
    assert nxt.pk != leased.pk
    # The fragment is the next task, not a whole page.
    assert f'data-assignment="{nxt.pk}"' in response.content.decode()
    assert "<html" not in response.content.decode()


def test_plain_form_post_redirects_to_the_annotate_page(ann_client, leased):
    order = leased.shown_order
    response = post(ann_client, leased, [[c] for c in order], htmx=False)
    assert response.status_code == 302
    assert response.url == reverse("labeling:annotate", args=[leased.project.slug])


@pytest.mark.parametrize("make_ranking, message", [
    (lambda o: [[o[0]], [o[1]], [999999]], "Unknown candidate ids"),
    (lambda o: [[o[0]], [o[1]], [o[2]], [o[0]]], "ranked more than once"),
    (lambda o: [[o[0]], [o[1]]], "not ranked"),
    (lambda o: [[o[0], o[1]], [o[2]]], "does not allow ties"),
    (lambda o: "[[1, 2", "not valid JSON"),
    (lambda o: [["x"], [o[1]], [o[2]]], "must be integers"),
])
def test_bad_rankings_get_400_and_change_nothing(ann_client, leased, make_ranking, message):
    response = post(ann_client, leased, make_ranking(leased.shown_order))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert_unchanged(leased)


def test_missing_ranking_gets_400(ann_client, leased):
    response = post(ann_client, leased)
    assert response.status_code == 400
    assert "Rank every candidate" in response.content.decode()
    assert_unchanged(leased)


def test_someone_elses_assignment_gets_403(client, project, leased, make_user):
    bob = make_user("bob")
    add_annotator(project, bob)
    client.force_login(bob)
    response = post(client, leased, [[c] for c in leased.shown_order])
    assert response.status_code == 403
    assert "belongs to another annotator" in response.content.decode()
    assert_unchanged(leased)


def test_assignment_of_another_project_gets_404(ann_client, leased, make_project, annotator):
    other = make_project(name="Other", annotators=[annotator])
    url = reverse("labeling:submit", args=[other.slug, leased.pk])
    response = ann_client.post(url, {"ranking": json.dumps([[c] for c in leased.shown_order])},
                               headers={"HX-Request": "true"})
    assert response.status_code == 404
    assert_unchanged(leased)


def test_closed_task_gets_409(ann_client, leased):
    close_task(leased.task)  # which also ends the lease
    response = post(ann_client, leased, [[c] for c in leased.shown_order])
    assert response.status_code == 409
    assert "This task is closed" in response.content.decode()
    assert not Annotation.objects.exists() and not PreferencePair.objects.exists()
    leased.refresh_from_db()
    assert leased.status == Assignment.Status.EXPIRED


def test_oversized_text_gets_400(ann_client, leased, settings):
    settings.RANKLOOP_MAX_TEXT_CHARS = 100
    response = post(ann_client, leased, [[c] for c in leased.shown_order], rationale="x" * 101)
    assert response.status_code == 400
    assert "Too long: 101 characters, at most 100" in response.content.decode()
    assert_unchanged(leased)


def test_bad_rating_and_flag_get_400(ann_client, leased):
    o = leased.shown_order
    response = post(ann_client, leased, [[c] for c in o], **{f"rating-{o[0]}-helpful": "9"})
    assert response.status_code == 400 and "Scores must be whole numbers from 1 to 5" in response.content.decode()
    response = post(ann_client, leased, [[c] for c in o], **{f"flag-{o[0]}": "made_up"})
    assert response.status_code == 400 and "Unknown flag" in response.content.decode()
    assert_unchanged(leased)


def test_bad_submit_without_htmx_is_a_page_with_the_message(ann_client, leased):
    response = post(ann_client, leased, [[999999]], htmx=False)
    assert response.status_code == 400
    assert "Unknown candidate ids" in response.content.decode()
    assert "<html" in response.content.decode()


def test_get_is_not_allowed(ann_client, leased):
    assert ann_client.get(submit_url(leased)).status_code == 405


def test_skip_releases_the_task_and_returns_the_next(ann_client, leased, annotator):
    url = reverse("labeling:skip", args=[leased.project.slug, leased.pk])
    response = ann_client.post(url, headers={"HX-Request": "true"})
    assert response.status_code == 200
    leased.refresh_from_db()
    assert leased.status == Assignment.Status.SKIPPED
    assert ComparisonTask.objects.get(pk=leased.task_id).leased == 0
    assert "Skipped." in response.content.decode()


def test_skip_after_submit_gets_409(ann_client, leased):
    post(ann_client, leased, [[c] for c in leased.shown_order])
    url = reverse("labeling:skip", args=[leased.project.slug, leased.pk])
    response = ann_client.post(url, headers={"HX-Request": "true"})
    assert response.status_code == 409
    assert "already submitted" in response.content.decode()


def test_pairwise_choice(client, make_project, make_tasks, annotator):
    project = make_project(name="Pairs", annotators=[annotator], allow_ties=False)
    make_tasks(project, 1)
    assignment = assign_next(project, annotator)
    client.force_login(annotator)
    response = post(client, assignment, choice="tie")
    assert response.status_code == 400 and "does not allow ties" in response.content.decode()
    assert not Annotation.objects.exists()
    response = post(client, assignment, choice="b")
    assert response.status_code == 200
    a, b = assignment.shown_order
    assert Annotation.objects.get().ranking == [[b], [a]]
    assert "All done" in response.content.decode()
