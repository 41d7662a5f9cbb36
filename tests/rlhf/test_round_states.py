"""Every round state as its page shows it: label, badge, what the progress bar measures and the
actions offered all come from one table (rlhf.services.STATE_VIEWS); the live fragment keeps
the header's badge and actions in step with the state."""
import re

import pytest
from django.urls import reverse

from labeling.actions.annotations import submit_annotation
from labeling.actions.assignments import assign_next
from labeling.actions.tasks import create_task
from labeling.models import Candidate
from models_app import services as models
from models_app.models import ModelVersion
from rlhf import services
from rlhf.models import Round, TrainingRun
from tests.support.rlhf import add_prompts


@pytest.fixture
def staff_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def no_enqueue(monkeypatch):
    monkeypatch.setattr(services, "enqueue_chain", lambda round: None)
    monkeypatch.setattr(models, "_enqueue", lambda *args: None)


def page(client, round):
    response = client.get(reverse("rlhf:detail", args=[round.pk]))
    assert response.status_code == 200
    return response.content.decode()


def fragment(client, round):
    response = client.get(reverse("rlhf:progress", args=[round.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    return response.content.decode()


def badge(html):
    """The header badge's label (the out-of-band one in a fragment)."""
    found = re.search(r'<span id="round-badge" class="state state-([a-z_]+)"[^>]*>([^<]+)</span>', html)
    assert found, "no round badge"
    return found.group(2)


def actions(html):
    return re.findall(r'data-action="([a-z]+)"', html)


def progress_line(html):
    found = re.search(r'<div class="progress-line">\s*<span>(.*?)</span>\s*<span>(\d+)%</span>', html, re.S)
    return " ".join(found.group(1).split()), int(found.group(2))


def new_policy(tiny_policy, name):
    return ModelVersion.objects.create(kind="policy", name=name, artifact_dir=tiny_policy.artifact_dir,
                                       base_model=tiny_policy.base_model, parent=tiny_policy)


def evaluated_round(project, policy_in, policy_out, number=1):
    round = Round.objects.create(project=project, number=number, state=Round.State.EVALUATED, algorithm="dpo",
                                 policy_in=policy_in, policy_out=policy_out, metrics={"win_rate": 0.75})
    for kind in ("reward", "dpo", "eval"):
        TrainingRun.objects.create(round=round, kind=kind, status=TrainingRun.Status.SUCCEEDED, step=2, total_steps=2)
    return round


def test_generate_candidates_opens_a_round_without_an_algorithm_showing_generation(
        staff_client, project_with_policy, no_enqueue):
    add_prompts(project_with_policy, 3)
    staff_client.post(reverse("rlhf:generate", args=[project_with_policy.slug]), {"prompts": "2"})
    round = Round.objects.get()
    assert round.algorithm == ""
    html = page(staff_client, round)
    assert "DPO" not in html and f"<h1>Round {round.number}\n" in html
    assert badge(html) == "Generating candidates"
    assert progress_line(html) == ("Generating candidates · Generating candidates: 0/2 prompts", 0)
    assert actions(html) == ["cancel"]

    round.generation_jobs.update(done=1, tasks_created=1, status="running")
    assert progress_line(fragment(staff_client, round)) == (
        "Generating candidates · Generating candidates: 1/2 prompts, 1 comparison task so far", 50)


def test_generation_writes_through_the_rounds_job(project_with_policy, admin_user, tiny_policy):
    prompts = add_prompts(project_with_policy, 2)
    round = services.start_labeling_round(project_with_policy, prompts, user=admin_user,
                                          decoding={"max_new_tokens": 4})
    job = round.generation_jobs.get()
    models.run_generation_job(job.pk)
    services.finish_generation(round)
    job.refresh_from_db()
    round.refresh_from_db()
    assert (job.status, job.done, job.total, job.tasks_created) == ("succeeded", 2, 2, 2)
    assert round.state == Round.State.LABELING


def labeling_round(project, n=2):
    round = Round.objects.create(project=project, number=1, state=Round.State.LABELING,
                                 policy_in=models.deployed_policy(project))
    for i, prompt in enumerate(add_prompts(project, n)):
        candidates = [Candidate.objects.create(prompt=prompt, text=f"answer {i}.{j}") for j in range(2)]
        create_task(prompt, candidates, round_number=round.number)
    return round


def label_one(project):
    assignment = assign_next(project, project.annotator)
    submit_annotation(assignment.pk, project.annotator, {"ranking": [[assignment.shown_order[0]],
                                                                               [assignment.shown_order[1]]]})


def test_a_labeling_round_shows_labeling_progress_then_the_next_action(staff_client, project_with_policy):
    project = project_with_policy
    round = labeling_round(project)
    html = page(staff_client, round)
    assert badge(html) == "Labeling"
    assert progress_line(html) == ("Labeling · Labeling: 0/2 tasks labelled (0/2 annotations)", 0)
    assert 'hx-trigger="every 10s"' in html  # annotators are at work: the page follows them
    label_one(project)
    assert progress_line(fragment(staff_client, round))[1] == 50
    assert "Next:" not in fragment(staff_client, round)

    label_one(project)
    html = page(staff_client, round)
    assert progress_line(html) == ("Labeling · Labeling: 2/2 tasks labelled (2/2 annotations)", 100)
    assert "<strong>Next:</strong> All 2 tasks of this round are labelled: launch training." in html
    assert actions(html) == ["launch", "cancel"]
    launch = re.search(r'<a class="primary" href="([^"]+)"[^>]*data-action="launch"', html)
    assert launch and launch.group(1) == reverse("rlhf:project", args=[project.slug]) + "#launch"


def test_the_header_badge_and_actions_follow_the_live_state(staff_client, project_with_policy, tiny_policy):
    round = evaluated_round(project_with_policy, tiny_policy, new_policy(tiny_policy, "tiny-new"))
    Round.objects.filter(pk=round.pk).update(state=Round.State.TRAINING)
    round.runs.filter(kind="eval").update(status=TrainingRun.Status.PENDING, step=0)
    html = page(staff_client, round)
    assert badge(html) == "Training" and actions(html) == ["cancel"]

    services.transition(round, Round.State.EVALUATING)
    round.runs.filter(kind="eval").update(status=TrainingRun.Status.RUNNING, step=1, total_steps=4)
    live = fragment(staff_client, round)
    assert re.search(r'<span id="round-badge"[^>]*hx-swap-oob="true"', live)
    assert badge(live) == "Evaluating" and 'id="round-actions" hx-swap-oob="true"' in live
    assert progress_line(live) == ("Evaluating · Evaluation step 1/4", 75)

    services.finish_evaluation(round)
    live = fragment(staff_client, round)
    assert badge(live) == "Evaluated" and actions(live) == ["deploy", "discard"]


def test_an_evaluated_round_offers_deploy_or_discard_and_no_cancel(staff_client, project_with_policy, tiny_policy):
    round = evaluated_round(project_with_policy, tiny_policy, new_policy(tiny_policy, "tiny-new"))
    html = page(staff_client, round)
    assert badge(html) == "Evaluated" and actions(html) == ["deploy", "discard"]
    assert "Deploy the new policy, or discard the round" in html
    assert progress_line(html)[1] == 100

    response = staff_client.post(reverse("rlhf:action", args=[round.pk, "cancel"]), follow=True)
    assert b"deploy it or discard it" in response.content
    response = staff_client.post(reverse("rlhf:action", args=[round.pk, "discard"]), follow=True)
    assert b"Round 1 discarded" in response.content
    round.refresh_from_db()
    assert round.state == Round.State.CANCELLED and models.deployed_policy(project_with_policy) == tiny_policy
    html = page(staff_client, round)
    assert badge(html) == "Cancelled" and actions(html) == []  # every run finished: nothing to retry
    with pytest.raises(services.RoundError, match="nothing is left to retry"):
        services.retry_round(round, user=None)


def test_a_rolled_back_round_reads_so_and_only_the_live_round_reads_deployed(
        staff_client, project_with_policy, tiny_policy, admin_user):
    project = project_with_policy
    first_policy, second_policy = new_policy(tiny_policy, "tiny-r1"), None
    first = evaluated_round(project, tiny_policy, first_policy, number=1)
    services.deploy_round(first, user=admin_user)
    second_policy = new_policy(tiny_policy, "tiny-r2")
    second = evaluated_round(project, first_policy, second_policy, number=2)
    services.deploy_round(second, user=admin_user)

    def list_badges():
        html = staff_client.get(reverse("rlhf:list")).content.decode()
        return dict(re.findall(r'>Round (\d+)</a></td>\s*<td><span class="state state-[a-z_]+"[^>]*>([^<]+)<', html))

    assert list_badges() == {"1": "Superseded", "2": "Deployed"}
    assert actions(page(staff_client, first)) == [] and actions(page(staff_client, second)) == ["rollback"]

    staff_client.post(reverse("rlhf:action", args=[second.pk, "rollback"]))
    second.refresh_from_db()
    assert second.state == Round.State.ROLLED_BACK and models.deployed_policy(project) == first_policy
    assert badge(page(staff_client, second)) == "Rolled back" and actions(page(staff_client, second)) == []
    assert list_badges() == {"1": "Deployed", "2": "Rolled back"}
    project_page = staff_client.get(reverse("rlhf:project", args=[project.slug])).content.decode()
    assert project_page.count(">Deployed<") == 1


def test_failed_and_training_rounds(staff_client, labeled_project, admin_user, no_enqueue):
    round = services.launch_round(labeled_project, user=admin_user, algorithm="dpo")
    html = page(staff_client, round)
    assert badge(html) == "Training" and actions(html) == ["cancel"] and "<h1>Round 1 · DPO" in html
    services.fail_round(round, "the worker ran out of memory")
    html = page(staff_client, round)
    assert badge(html) == "Failed" and actions(html) == ["retry"] and "ran out of memory" in html


def test_the_api_says_the_same(project_with_policy, tiny_policy, admin_user):
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(admin_user)
    round = evaluated_round(project_with_policy, tiny_policy, new_policy(tiny_policy, "tiny-new"))
    body = api.get(f"/api/v1/rounds/{round.pk}/").json()
    assert (body["state"], body["label"], body["actions"]) == ("evaluated", "Evaluated", ["deploy", "discard"])
    assert body["percent"] == 100 and "discard" in body["next_step"]
    assert api.post(f"/api/v1/rounds/{round.pk}/cancel/").status_code == 409
    discarded = api.post(f"/api/v1/rounds/{round.pk}/discard/").json()
    assert (discarded["state"], discarded["label"], discarded["actions"]) == ("cancelled", "Cancelled", [])
