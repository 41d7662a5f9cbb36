"""Migrations carry an existing database forward with nothing lost: a database filled by the
demo loader, annotated, with a finished round, goes back to before the app graph was turned
one-way and forward again, and every row and link is as it was."""
import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from labeling.models import Annotation, Candidate, ComparisonTask, PreferencePair, Project, Prompt
from models_app.models import ModelVersion
from rlhf.models import Round, TrainingRun

from tests.support.rlhf import annotate_all

pytestmark = pytest.mark.django_db(transaction=True)

# The last migrations before ModelVersion.training_run became TrainingRun.output.
BEFORE = [("models_app", "0006_generation_job_k"), ("rlhf", "0003_launcher_settings")]


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
        "tasks": ComparisonTask.objects.count(), "annotations": Annotation.objects.count(),
        "pairs": sorted(PreferencePair.objects.values_list("id", "chosen_id", "rejected_id", "round__number")),
        "versions": sorted(ModelVersion.objects.values_list("id", "name", "parent_id")),
        "runs": sorted(TrainingRun.objects.values_list("id", "kind", "round__number", "output_id")),
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
    ComparisonTask.objects.filter(project=project).update(round=round)
    PreferencePair.objects.filter(project=project).update(round=round)
    TrainingRun.objects.create(round=round, kind="dpo", status="succeeded", output=trained)
    return project


def test_it_goes_back_and_forth_losing_nothing(filled):
    before = snapshot()
    assert before["pairs"] and before["runs"][0][3] is not None

    old = migrate(BEFORE)
    run_id, version_id = before["runs"][0][0], before["runs"][0][3]
    assert old.get_model("models_app", "ModelVersion").objects.get(pk=version_id).training_run_id == run_id

    migrate(latest())
    assert snapshot() == before
    assert ModelVersion.objects.get(pk=version_id).origin == "round 1, DPO run " + str(run_id)
