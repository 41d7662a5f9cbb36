"""Gold tasks are served at the project's gold_share, never twice to one annotator, look like any
other task to the annotator, and never reach training data."""
import pytest
from scipy.stats import binomtest

from labeling.actions.assignments import assign_next
from labeling.actions.tasks import create_task
from labeling.errors import LabelingError
from labeling.models import ComparisonTask, PreferencePair
from labeling.pair_filters import PairFilters
from tests.support.quality import answer, make_gold


def test_gold_is_served_at_the_configured_share_and_never_twice(make_project, make_tasks, make_user):
    annotators = [make_user(f"g{i}") for i in range(4)]
    project = make_project(annotators=annotators, gold_share=0.25)
    make_tasks(project, 120)
    make_gold(project, 60)
    gold_seen = {u.pk: [] for u in annotators}
    claims = gold = 0
    for _ in range(25):
        for user in annotators:
            assignment = assign_next(project, user)
            claims += 1
            if assignment.task.is_gold:
                gold += 1
                gold_seen[user.pk].append(assignment.task_id)
            answer(assignment, user)
    # 100 claims at p = 0.25: a two-sided binomial test does not reject the configured share.
    assert binomtest(gold, claims, 0.25).pvalue > 0.001, (gold, claims)
    assert all(len(seen) == len(set(seen)) for seen in gold_seen.values())


def test_a_gold_task_goes_to_every_annotator_and_stays_open(make_project, make_user):
    annotators = [make_user(f"e{i}") for i in range(3)]
    project = make_project(annotators=annotators, gold_share=1.0, overlap=1)
    (task,) = make_gold(project, 1)
    for user in annotators:
        answer(assign_next(project, user), user)
        assert assign_next(project, user) is None  # nothing else, and never the same gold twice
    task.refresh_from_db()
    assert task.annotations_done == 3 and task.status == ComparisonTask.Status.OPEN


def test_without_a_gold_share_gold_is_not_served(make_project, make_tasks, annotator):
    project = make_project(annotators=[annotator])
    make_gold(project, 3)
    make_tasks(project, 2)
    served = []
    while (assignment := assign_next(project, annotator)) is not None:
        served.append(assignment.task.is_gold)
        answer(assignment, annotator)
    assert served == [False, False]


def test_when_no_gold_is_left_for_them_they_get_a_real_task(make_project, make_tasks, annotator):
    project = make_project(annotators=[annotator], gold_share=1.0)
    make_gold(project, 1)
    make_tasks(project, 1)
    first = assign_next(project, annotator)
    answer(first, annotator)
    second = assign_next(project, annotator)
    assert first.task.is_gold and not second.task.is_gold


def test_the_annotator_api_answer_does_not_tell_gold_apart(make_project, make_tasks, annotator):
    from rest_framework.test import APIClient

    project = make_project(annotators=[annotator], gold_share=1.0)  # gold first, then the real task
    make_tasks(project, 1)
    make_gold(project, 1)
    api = APIClient()
    api.force_authenticate(annotator)
    shapes = []
    for _ in range(2):
        body = api.post(f"/api/v1/projects/{project.slug}/next-task/").json()
        assert "gold" not in str(sorted(body)).lower() and "gold" not in str(body.get("task", "")).lower()
        shapes.append(sorted(body))
        api.post(f"/api/v1/assignments/{body['id']}/submit/", {"choice": "a"}, format="json")
    assert shapes[0] == shapes[1]


def test_gold_answers_never_reach_training_pairs(make_project, annotator):
    project = make_project(annotators=[annotator], gold_share=1.0)
    make_gold(project, 2)
    for _ in range(2):
        answer(assign_next(project, annotator), annotator)
    assert PreferencePair.objects.filter(project=project).count() == 2
    assert not PairFilters().pairs(project).exists()


@pytest.mark.parametrize("ranking", [None, [], [[1]], "best"])
def test_a_gold_task_without_a_valid_ranking_is_refused(make_project, ranking):
    from labeling.models import Candidate, Prompt

    project = make_project()
    prompt = Prompt.objects.create(project=project, messages=[{"role": "user", "content": "q"}])
    candidates = [Candidate.objects.create(prompt=prompt, text=t) for t in ("x", "y")]
    with pytest.raises(LabelingError):
        create_task(prompt, candidates, is_gold=True, gold_ranking=ranking)
    assert not ComparisonTask.objects.exists()
