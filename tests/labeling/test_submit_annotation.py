import pytest

from labeling.actions.annotations import submit_annotation
from labeling.actions.assignments import assign_next
from labeling.actions.memberships import add_annotator
from labeling.actions.tasks import close_task
from labeling.errors import Conflict, InvalidSubmission, NotAllowed
from labeling.models import Annotation, Assignment, ComparisonTask, PreferencePair
from labeling.votes import majority, pair_votes


@pytest.fixture
def ranking_project(make_project, annotator):
    return make_project(annotators=[annotator], mode="ranking", candidates_per_prompt=3, overlap=1,
                        allow_ties=False, rating_aspects=["helpful"], rating_scale=5)


def lease(project, make_tasks, user):
    make_tasks(project, 1)
    return assign_next(project, user)


def nothing_written():
    return not Annotation.objects.exists() and not PreferencePair.objects.exists()


def test_ranking_is_stored_with_its_pairs(ranking_project, make_tasks, annotator):
    a = lease(ranking_project, make_tasks, annotator)
    order = a.shown_order
    annotation = submit_annotation(a.pk, annotator, {
        "ranking": [[order[0]], [order[1]], [order[2]]], "ratings": {str(order[0]): {"helpful": 5}},
        "flags": {order[2]: ["off_topic"]}, "rationale": "first is right", "time_on_task_ms": 4200,
    })
    assert annotation.ranking == [[order[0]], [order[1]], [order[2]]]
    assert annotation.time_on_task_ms == 4200
    pairs = PreferencePair.objects.all()
    assert pairs.count() == 3  # C(3, 2)
    assert {(p.chosen_id, p.rejected_id) for p in pairs} == {
        (order[0], order[1]), (order[0], order[2]), (order[1], order[2])}
    a.refresh_from_db()
    assert a.status == Assignment.Status.SUBMITTED


def test_repeated_submit_is_idempotent(ranking_project, make_tasks, annotator):
    a = lease(ranking_project, make_tasks, annotator)
    payload = {"ranking": [[c] for c in a.shown_order]}
    first = submit_annotation(a.pk, annotator, payload)
    again = submit_annotation(a.pk, annotator, payload)
    assert first.pk == again.pk
    assert Annotation.objects.count() == 1
    assert ComparisonTask.objects.get().annotations_done == 1
    with pytest.raises(Conflict):
        submit_annotation(a.pk, annotator, {"ranking": [[c] for c in reversed(a.shown_order)]})


@pytest.mark.parametrize("bad, message", [
    (lambda o: {"ranking": [[o[0]], [o[1]], [999999]]}, "Unknown candidate"),
    (lambda o: {"ranking": [[o[0]], [o[0]], [o[1]], [o[2]]]}, "more than once"),
    (lambda o: {"ranking": [[o[0]], [o[1]]]}, "not ranked"),
    (lambda o: {"ranking": [[o[0], o[1]], [o[2]]]}, "does not allow ties"),
    (lambda o: {"ranking": "first"}, "list of tiers"),
    (lambda o: {"ranking": [[c] for c in o], "ratings": {str(o[0]): {"helpful": 9}}}, "from 1 to 5"),
    (lambda o: {"ranking": [[c] for c in o], "ratings": {str(o[0]): {"funny": 3}}}, "Unknown rating aspect"),
    (lambda o: {"ranking": [[c] for c in o], "flags": {str(o[0]): ["nope"]}}, "Unknown flag"),
    (lambda o: {"ranking": [[c] for c in o], "rationale": "x" * 20001}, "Too long"),
    (lambda o: {"choice": "a"}, "exactly two"),
    (lambda o: {}, "Rank every candidate"),
])
def test_bad_payload_is_refused_and_writes_nothing(ranking_project, make_tasks, annotator, bad, message):
    a = lease(ranking_project, make_tasks, annotator)
    with pytest.raises(InvalidSubmission, match=message):
        submit_annotation(a.pk, annotator, bad(a.shown_order))
    assert nothing_written()
    a.refresh_from_db()
    assert a.status == Assignment.Status.LEASED


def test_someone_elses_assignment_is_refused(ranking_project, make_tasks, annotator, make_user):
    other = make_user("other")
    add_annotator(ranking_project, other)
    a = lease(ranking_project, make_tasks, annotator)
    with pytest.raises(NotAllowed):
        submit_annotation(a.pk, other, {"ranking": [[c] for c in a.shown_order]})
    assert nothing_written()


def test_closed_task_is_refused(ranking_project, make_tasks, annotator):
    a = lease(ranking_project, make_tasks, annotator)
    close_task(a.task)
    with pytest.raises(Conflict, match="closed"):
        submit_annotation(a.pk, annotator, {"ranking": [[c] for c in a.shown_order]})
    assert nothing_written()


def test_pairwise_choices(make_project, make_tasks, make_user):
    users = [make_user(f"u{i}") for i in range(3)]
    project = make_project(annotators=users, overlap=3, allow_ties=True, shuffle_positions=False)
    make_tasks(project, 1)
    for user, choice in zip(users, ["a", "a", "tie"]):
        a = assign_next(project, user)
        submit_annotation(a.pk, user, {"choice": choice})
    pair = PreferencePair.objects.get()
    assert (pair.votes_a + pair.votes_b, pair.votes_tie) == (2, 1)
    assert pair.agreement == pytest.approx(2 / 3)
    assert pair.margin == pytest.approx(2 / 3)
    assert not pair.is_tie


def test_majority_and_ties():
    assert majority(2, 1, 0) == ("a", pytest.approx(2 / 3), pytest.approx(1 / 3))
    assert majority(1, 1, 0)[0] == "tie"
    assert majority(0, 0, 2)[0] == "tie"
    assert majority(0, 3, 1)[0] == "b"


def test_kwise_ranking_yields_all_pairs():
    votes = pair_votes([[[3], [1, 2], [4]]])
    assert len(votes) == 6
    assert votes[(1, 2)] == [0, 0, 1]
    assert votes[(1, 3)] == [0, 1, 0]
    assert votes[(3, 4)] == [1, 0, 0]
