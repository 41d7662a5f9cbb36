"""Migrations carry an existing database forward with nothing lost: a database filled by the
demo loader, annotated, with a finished round, goes back to before the app graph was turned
one-way and forward again, and every row and link is as it was."""
import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from labeling.models import Annotation, Candidate, ComparisonTask, PreferencePair, Project, Prompt
from models_app.models import GenerationJob, ModelVersion, ProjectJudge
from models_app.services import set_judge
from rlhf.models import Round, TrainingRun
from tests.support.rlhf import annotate_all

pytestmark = pytest.mark.django_db(transaction=True)

# The last migrations before the foreign keys up the app order were turned around:
# ModelVersion.training_run (now TrainingRun.output), ComparisonTask / PreferencePair /
# GenerationJob.round (now their round_number).
BEFORE = [("labeling", "0006_launcher_and_judge"), ("models_app", "0006_generation_job_k"),
          ("rlhf", "0003_launcher_settings")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def latest():
    executor = MigrationExecutor(connection)
    return [key for key in executor.loader.graph.leaf_nodes() if key[0] in {"labeling", "models_app", "rlhf",
                                                                             "serving"}]


def snapshot():
    return {
        "prompts": Prompt.objects.count(), "candidates": Candidate.objects.count(),
        "tasks": sorted(ComparisonTask.objects.values_list("id", "round_number")),
        "annotations": Annotation.objects.count(),
        "pairs": sorted(PreferencePair.objects.values_list("id", "chosen_id", "rejected_id", "round_number")),
        "jobs": sorted(GenerationJob.objects.values_list("id", "round_number")),
        "versions": sorted(ModelVersion.objects.values_list("id", "name", "parent_id")),
        "runs": sorted(TrainingRun.objects.values_list("id", "kind", "round__number", "output_id")),
        "judges": sorted(ProjectJudge.objects.values_list("project_id", "model_version_id")),
    }


@pytest.fixture
def filled(tmp_path):
    call_command("load_demo")
    project = Project.objects.order_by("id").first()
    annotator = project.annotators.first()
    annotate_all(project, annotator, prefer=lambda texts: 0)
    base = ModelVersion.objects.create(kind="policy", name="base", artifact_dir=str(tmp_path), base_model="tiny")
    trained = ModelVersion.objects.create(kind="policy", name="round-1-dpo", artifact_dir=str(tmp_path),
                                          base_model="tiny", parent=base, origin="round 1, DPO run")
    round = Round.objects.create(project=project, number=1, state=Round.State.DEPLOYED, algorithm="dpo",
                                 policy_in=base, policy_out=trained)
    ComparisonTask.objects.filter(project=project).update(round_number=round.number)
    PreferencePair.objects.filter(project=project).update(round_number=round.number)
    GenerationJob.objects.create(project=project, round_number=round.number, model_version=base, total=1)
    GenerationJob.objects.create(project=project, model_version=base, total=1)  # outside rounds
    TrainingRun.objects.create(round=round, kind="dpo", status="succeeded", output=trained)
    judge = ModelVersion.objects.create(kind="reward", name="public-judge", artifact_dir=str(tmp_path),
                                        base_model="tiny")
    set_judge(project, judge)
    return project


def test_it_goes_back_and_forth_losing_nothing(filled):
    before = snapshot()
    assert before["pairs"] and before["runs"][0][3] is not None
    assert {number for _, number in before["tasks"]} == {1, None} and before["pairs"][0][3] == 1
    assert len(before["judges"]) == 1

    old = migrate(BEFORE)
    run_id, version_id = before["runs"][0][0], before["runs"][0][3]
    assert old.get_model("models_app", "ModelVersion").objects.get(pk=version_id).training_run_id == run_id
    round_id = old.get_model("rlhf", "Round").objects.get().pk
    for name in ("ComparisonTask", "PreferencePair"):
        assert set(old.get_model("labeling", name).objects.filter(project=filled.pk).values_list(
            "round_id", flat=True)) == {round_id}
    assert set(old.get_model("models_app", "GenerationJob").objects.values_list("round_id", flat=True)) == {
        round_id, None}
    [(project_id, judge_id)] = before["judges"]  # the judge was the project's own key then
    assert old.get_model("labeling", "Project").objects.get(pk=project_id).judge_id == judge_id

    migrate(latest())
    assert snapshot() == before
    assert ModelVersion.objects.get(pk=version_id).origin == "round 1, DPO run " + str(run_id)
