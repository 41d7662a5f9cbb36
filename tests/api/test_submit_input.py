"""Whatever an annotator sends to submit, the answer is a 400 naming the field (never a 500),
nothing is written, and ratings are whole numbers as sent, never coerced."""
import json

import pytest
from django.urls import reverse

from labeling.actions.assignments import assign_next
from labeling.models import Annotation, PreferencePair

pytestmark = pytest.mark.django_db

SURROGATE = "x\ud800y"


@pytest.fixture
def project(make_project, annotator):
    return make_project("Rated", annotators=[annotator], mode="ranking", candidates_per_prompt=3,
                        rating_aspects=["helpful"], rating_scale=5)


@pytest.fixture
def leased(project, make_tasks, annotator):
    make_tasks(project, 2)
    return assign_next(project, annotator)


def raw_json(client, assignment, body: str):
    """Posts the JSON text as it is (the test client would re-encode a dict)."""
    return client.post(f"/api/v1/assignments/{assignment.pk}/submit/", body, content_type="application/json")


def ranking(assignment):
    return [[c] for c in assignment.shown_order]


def nothing_written():
    return not Annotation.objects.exists() and not PreferencePair.objects.exists()


def bad_payloads(o):
    """(field, payload) pairs; each must be refused with an error on that field."""
    rank = [[c] for c in o]
    first = str(o[0])
    return [
        ("flags", {"ranking": rank, "flags": {first: [["harmful"]]}}),
        ("flags", {"ranking": rank, "flags": {first: [{"x": 1}]}}),
        ("flags", {"ranking": rank, "flags": {first: [SURROGATE]}}),
        ("flags", {"ranking": rank, "flags": {SURROGATE: ["harmful"]}}),
        ("flags", {"ranking": rank, "flags": {first: ["harm\x00ful"]}}),
        ("rationale", {"ranking": rank, "rationale": SURROGATE}),
        ("ideal_answer", {"ranking": rank, "ideal_answer": SURROGATE}),
        ("rationale", {"ranking": rank, "rationale": "nul\x00"}),
        ("ranking", {"ranking": [[SURROGATE]] + rank[1:]}),
        ("ranking", {"ranking": [[[o[0]]], [o[1]], [o[2]]]}),
        ("ranking", {"ranking": [[{"id": o[0]}], [o[1]], [o[2]]]}),
        ("ratings", {"ranking": rank, "ratings": {SURROGATE: {"helpful": 3}}}),
        ("ratings", {"ranking": rank, "ratings": {first: {SURROGATE: 3}}}),
        ("ratings", {"ranking": rank, "ratings": {first: {"helpful": [3]}}}),
        ("ratings", {"ranking": rank, "ratings": {first: {"helpful": {"x": 1}}}}),
        ("ratings", {"ranking": rank, "ratings": {first: [["helpful", 3]]}}),
        ("time_on_task_ms", {"ranking": rank, "time_on_task_ms": SURROGATE}),
        ("time_on_task_ms", {"ranking": rank, "time_on_task_ms": [1]}),
    ]


@pytest.mark.parametrize("case", range(18))
def test_it_answers_400_with_the_field_to_any_malformed_json_submit(annotator_api, leased, case):
    field, payload = bad_payloads(leased.shown_order)[case]
    # json.dumps writes lone surrogates as \ud800 escapes, which the JSON parser turns back into them.
    response = raw_json(annotator_api, leased, json.dumps(payload))
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"], response.json()
    assert nothing_written()


@pytest.mark.parametrize("choice", [SURROGATE, "a\x00", ["a"], {"a": 1}, 1, True])
def test_it_answers_400_to_a_malformed_pairwise_choice(make_project, make_tasks, annotator, annotator_api, choice):
    project = make_project("Pairs", annotators=[annotator])
    make_tasks(project, 1)
    assignment = assign_next(project, annotator)
    response = raw_json(annotator_api, assignment, json.dumps({"choice": choice}))
    assert response.status_code == 400, response.content
    assert "choice" in response.json()["errors"]
    assert nothing_written()


@pytest.mark.parametrize("score", [3.7, 3.0, True, "3", "", [], "3.5", -1, 0, 6])
def test_it_refuses_a_json_rating_that_is_not_a_whole_number_in_range(annotator_api, leased, score):
    payload = {"ranking": ranking(leased), "ratings": {str(leased.shown_order[0]): {"helpful": score}}}
    response = raw_json(annotator_api, leased, json.dumps(payload))
    assert response.status_code == 400, (score, response.content)
    assert "ratings" in response.json()["errors"]
    assert nothing_written()


def test_it_stores_a_json_rating_as_the_integer_sent(annotator_api, leased):
    payload = {"ranking": ranking(leased), "ratings": {str(leased.shown_order[0]): {"helpful": 4}}}
    assert raw_json(annotator_api, leased, json.dumps(payload)).status_code == 201
    assert Annotation.objects.get().ratings == {str(leased.shown_order[0]): {"helpful": 4}}


@pytest.mark.parametrize("time_ms", [3.7, True, "12"])
def test_it_refuses_a_json_time_on_task_that_is_not_an_integer(annotator_api, leased, time_ms):
    response = raw_json(annotator_api, leased, json.dumps({"ranking": ranking(leased), "time_on_task_ms": time_ms}))
    assert response.status_code == 400, (time_ms, response.content)
    assert "time_on_task_ms" in response.json()["errors"]


# --- the annotator page's form ----------------------------------------------------------------


def form_post(client, assignment, data):
    url = reverse("labeling:submit", args=[assignment.project.slug, assignment.pk])
    return client.post(url, data, headers={"HX-Request": "true"})


@pytest.fixture
def ann_client(client, annotator):
    client.force_login(annotator)
    return client


@pytest.mark.parametrize("score", ["3.7", "true", " 3", "+3", "٣"])
def test_it_refuses_a_form_rating_that_is_not_a_string_of_digits(ann_client, leased, score):
    data = {"ranking": json.dumps(ranking(leased)), f"rating-{leased.shown_order[0]}-helpful": score}
    response = form_post(ann_client, leased, data)
    assert response.status_code == 400, (score, response.content)
    assert nothing_written()


def test_it_stores_a_form_rating_of_digits_as_an_integer(ann_client, leased):
    data = {"ranking": json.dumps(ranking(leased)), f"rating-{leased.shown_order[0]}-helpful": "3"}
    assert form_post(ann_client, leased, data).status_code == 200
    assert Annotation.objects.get().ratings == {str(leased.shown_order[0]): {"helpful": 3}}


@pytest.mark.parametrize("data", [
    lambda o: {"ranking": f'[["\\ud800"], [{o[1]:d}], [{o[2]:d}]]'},
    lambda o: {"ranking": json.dumps([[c] for c in o]), f"rating-{o[0]}-help\x00ful": "3"},
    lambda o: {"ranking": json.dumps([[c] for c in o]), f"flag-{o[0]}": "harm\x00ful"},
    lambda o: {"ranking": json.dumps([[c] for c in o]), "rationale": "nul\x00"},
    lambda o: {"ranking": json.dumps([[c] for c in o]), "time_on_task_ms": "\x00"},
])
def test_it_answers_400_to_any_malformed_form_submit(ann_client, leased, data):
    response = form_post(ann_client, leased, data(leased.shown_order))
    assert response.status_code == 400, response.content
    assert nothing_written()
