"""Where to spend labels: with queue order uncertainty the claim serves first the tasks whose
answers the latest reward model cannot tell apart; the scoring runs in a subprocess
(rlhf/training/score.py) and writes each open task's uncertainty."""
import json
import subprocess
import sys

import pytest
import yaml

from labeling.actions.annotations import submit_annotation
from labeling.actions.assignments import assign_next
from labeling.actions.tasks import set_uncertainty
from labeling.models import ComparisonTask
from models_app import services as models
from rlhf import uncertainty
from rlhf.models import Round


def served_order(project, annotator):
    order = []
    while (assignment := assign_next(project, annotator)) is not None:
        order.append(assignment.task_id)
        submit_annotation(assignment.pk, annotator, {"choice": "a"})
    return order


def test_the_queue_serves_the_most_uncertain_first_only_when_asked(make_project, make_tasks, annotator):
    project = make_project(annotators=[annotator], queue_order="uncertainty")
    tasks = make_tasks(project, 4)
    set_uncertainty(project, {tasks[0].pk: 0.1, tasks[1].pk: 0.95, tasks[3].pk: 0.6})
    assert served_order(project, annotator) == [tasks[1].pk, tasks[3].pk, tasks[0].pk, tasks[2].pk]

    other = make_project(name="Default order", annotators=[annotator])
    default_tasks = make_tasks(other, 3)
    set_uncertainty(other, {default_tasks[2].pk: 5.0})
    assert served_order(other, annotator) == [t.pk for t in default_tasks]


def test_uncertainty_of_another_projects_tasks_is_ignored(make_project, make_tasks):
    mine, theirs = make_project(name="Mine"), make_project(name="Theirs")
    (their_task,) = make_tasks(theirs, 1)
    assert set_uncertainty(mine, {their_task.pk: 1.0}) == 0
    assert ComparisonTask.objects.get(pk=their_task.pk).uncertainty == 0.0


@pytest.fixture(scope="module")
def tiny_reward_model(tiny_model_dir, tmp_path_factory):
    """The tiny model with a score head, saved (so every load has the same head)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = tmp_path_factory.mktemp("tiny-rm")
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=1)
    model.config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.mark.slow
def test_the_scoring_script_reports_margins_and_disagreement(tiny_reward_model, tmp_path):
    tiny_model_dir = tiny_reward_model
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text("".join(json.dumps(row) + "\n" for row in [
        {"id": 1, "prompt": [{"role": "user", "content": "Hi"}], "answers": ["Hello there", "Go away"]},
        {"id": 2, "prompt": [{"role": "user", "content": "2+2?"}], "answers": ["4", "5", "four"]}]))
    config = tmp_path / "score.yaml"
    config.write_text(yaml.safe_dump({"reward_model_path": str(tiny_model_dir), "tasks_file": str(tasks),
                                      "output_file": str(tmp_path / "out.jsonl"),
                                      "reward_model_path_previous": str(tiny_model_dir)}))
    subprocess.run([sys.executable, str(uncertainty.SCRIPT), "--config", str(config)], check=True,
                   capture_output=True, timeout=300)
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == [1, 2] and [len(r["scores"]) for r in rows] == [2, 3]
    for row in rows:
        gaps = sorted(row["scores"])
        assert row["margin"] == pytest.approx(min(b - a for a, b in zip(gaps, gaps[1:])))
        assert row["disagreement"] == 0.0  # the same model twice agrees with itself
        assert row["uncertainty"] == pytest.approx(1 / (1 + row["margin"]))


@pytest.mark.slow
def test_scoring_a_project_writes_every_open_tasks_uncertainty(project_with_policy, make_tasks, tiny_reward_model):
    project = project_with_policy
    with pytest.raises(uncertainty.NoRewardModel):
        uncertainty.score_open_tasks(project)
    reward = models.register_model(tiny_reward_model, kind="reward", name="tiny-rm")
    Round.objects.create(project=project, number=1, reward_model=reward)
    tasks = make_tasks(project, 3)
    assert uncertainty.score_open_tasks(project) == 3
    values = dict(ComparisonTask.objects.filter(pk__in=[t.pk for t in tasks]).values_list("id", "uncertainty"))
    assert all(0 < v <= 1 for v in values.values())
