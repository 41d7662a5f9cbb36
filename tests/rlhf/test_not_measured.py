"""A figure measured on nothing reads "not measured" everywhere: the round page, the API, the
deploy rule, the command line and the model version's metrics; it is never a number."""
import re
from io import StringIO

import pytest
from django.urls import reverse

from labeling.models import Prompt
from models_app.models import ModelVersion
from rlhf import config, services
from rlhf.models import Round
from tests.support.rlhf import TINY, wait_for


def test_the_deploy_rule_does_not_hold_on_a_figure_not_measured():
    holds, why = config.deploy_rule_holds({"min_rm_accuracy": 0.5}, {"rm_accuracy_heldout": None, "win_rate": 0.9})
    assert not holds and why == "rm_accuracy_heldout was not measured"
    holds, why = config.deploy_rule_holds({"max_kl": 1.0}, {"kl_to_old": float("nan")})
    assert not holds and why == "kl_to_old was not measured"


def test_a_figure_that_is_not_a_number_is_stored_as_not_measured(project_with_policy):
    round = Round.objects.create(project=project_with_policy, number=1)
    services.merge_round_metrics(round, {"kl_to_old": float("nan"), "win_rate": 0.5, "reward_gain": float("inf")})
    round.refresh_from_db()
    assert round.metrics == {"kl_to_old": None, "win_rate": 0.5, "reward_gain": None}


def test_the_round_page_and_list_say_not_measured(client, admin_user, project_with_policy):
    round = Round.objects.create(project=project_with_policy, number=1, algorithm="dpo",
                                 metrics={"rm_accuracy_heldout": None, "pairs_heldout": 0, "win_rate": None})
    client.force_login(admin_user)
    html = client.get(reverse("rlhf:detail", args=[round.pk])).content.decode()
    assert re.search(r"<th>rm accuracy heldout</th><td>not measured</td>", html)
    listing = client.get(reverse("rlhf:list")).content.decode()
    assert "not measured" in listing


@pytest.mark.celery
@pytest.mark.slow
def test_a_round_without_held_out_pairs_reports_its_accuracy_as_not_measured(worker, labeled_project, admin_user,
                                                                             client):
    project = labeled_project
    Prompt.objects.filter(project=project).update(split=Prompt.Split.TRAIN)
    project.pairs.update(split=Prompt.Split.TRAIN)
    round = services.launch_round(project, user=admin_user, algorithm="dpo", hyperparameters=TINY,
                                  deploy_rule={"min_rm_accuracy": 0.5})
    wait_for(lambda: round.runs.filter(kind="eval", status__in=["succeeded", "failed"]).exists()
             or Round.objects.get(pk=round.pk).state == Round.State.FAILED, what="the evaluation")
    round.refresh_from_db()
    assert round.state == Round.State.EVALUATED, round.error  # the rule did not hold on nothing
    assert round.metrics["pairs_heldout"] == 0 and round.metrics["rm_pairs_heldout"] == 0
    assert round.metrics["rm_accuracy_heldout"] is None
    note = round.transitions.filter(note__startswith="not deployed automatically").get().note
    assert note == "not deployed automatically: rm_accuracy_heldout was not measured"

    client.force_login(admin_user)
    html = client.get(reverse("rlhf:detail", args=[round.pk])).content.decode()
    assert re.search(r"<th>rm accuracy heldout</th><td>not measured</td>", html)
    assert "held-out accuracy not measured" in html

    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(admin_user)
    assert api.get(f"/api/v1/rounds/{round.pk}/").json()["metrics"]["rm_accuracy_heldout"] is None

    reward_model = ModelVersion.objects.get(pk=round.reward_model_id)
    assert reward_model.metrics["heldout_accuracy"] is None
    version_page = client.get(reverse("models_app:version", args=[reward_model.pk])).content.decode()
    assert "heldout_accuracy: <b>not measured</b>" in version_page
    assert api.get(f"/api/v1/model-versions/{reward_model.pk}/").json()["metrics"]["heldout_accuracy"] is None


def test_the_command_line_says_not_measured(project_with_policy, monkeypatch):
    from rlhf.management.commands.launch_round import Command

    round = Round.objects.create(project=project_with_policy, number=1, algorithm="dpo", state=Round.State.EVALUATED,
                                 metrics={"rm_accuracy_heldout": None, "win_rate": 0.5})
    out = StringIO()
    Command(stdout=out)._wait(round, timeout=5)
    assert "  rm_accuracy_heldout: not measured" in out.getvalue()
    assert "  win_rate: 0.5000" in out.getvalue()
