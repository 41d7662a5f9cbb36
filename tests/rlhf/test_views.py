"""Round pages through the Django test client (thin views over the services)."""
import json

import pytest
from django.urls import reverse

from rlhf import services
from rlhf.models import MetricPoint, Round


@pytest.fixture
def staff_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def no_enqueue(monkeypatch):
    monkeypatch.setattr(services, "enqueue_chain", lambda round: None)


def test_pages_are_for_staff(client, annotator, project_with_policy):
    client.force_login(annotator)
    assert client.get(reverse("rlhf:list")).status_code == 403
    assert client.get(reverse("rlhf:project", args=[project_with_policy.slug])).status_code == 403


def test_launch_form_shows_what_is_missing(staff_client, project_with_policy):
    url = reverse("rlhf:project", args=[project_with_policy.slug])
    page = staff_client.get(url)
    assert page.status_code == 200 and b"Launch a round" in page.content and b"tiny-base" in page.content
    response = staff_client.post(url, {"algorithm": "ppo", "hyperparameters": ""})
    assert response.status_code == 400 and b"no preference pairs yet" in response.content
    response = staff_client.post(url, {"algorithm": "ppo", "hyperparameters": "{oops"})
    assert response.status_code == 400 and b"Not valid JSON" in response.content
    assert not Round.objects.exists()


def test_launch_then_watch_then_cancel(staff_client, labeled_project, admin_user, no_enqueue):
    response = staff_client.post(reverse("rlhf:project", args=[labeled_project.slug]), {
        "algorithm": "dpo", "hyperparameters": json.dumps({"policy": {"max_steps": 3}}),
        "min_agreement": "0.5", "min_win_rate": "0.6",
    })
    round = Round.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("rlhf:detail", args=[round.pk])
    assert round.deploy_rule == {"min_win_rate": 0.6} and round.data_filters["min_agreement"] == 0.5
    assert round.hyperparameters == {"policy": {"max_steps": 3}}

    reward = round.runs.get(kind="reward")
    services.start_run(reward)
    services.record_progress(reward.pk, step=3, total=10)
    services.record_metrics(reward.pk, 3, {"loss": 0.69, "accuracy": 0.5, "epoch": 1.0})
    services.append_log(reward.pk, "step 3/10: loss=0.69\n")

    page = staff_client.get(reverse("rlhf:detail", args=[round.pk]))
    text = page.content.decode()
    assert 'hx-trigger="every 2s"' in text and "step 3/10" in text and "chartjs/chart.umd.min.js" in text
    assert 'aria-valuenow="10"' in text  # 0 of 3 runs done, the first at 3/10
    partial = staff_client.get(reverse("rlhf:progress", args=[round.pk]), HTTP_HX_REQUEST="true")
    assert b"loss=0.69" in partial.content and "HX-Refresh" not in partial
    series = staff_client.get(reverse("rlhf:metrics", args=[round.pk])).json()["series"]
    assert series[f"reward #{reward.pk}"]["loss"] == [[3, 0.69]]

    response = staff_client.post(reverse("rlhf:action", args=[round.pk, "cancel"]), follow=True)
    assert b"Round 1 cancelled." in response.content
    round.refresh_from_db()
    assert round.state == Round.State.CANCELLED
    response = staff_client.post(reverse("rlhf:action", args=[round.pk, "deploy"]), follow=True)
    assert b"only an evaluated round" in response.content
    partial = staff_client.get(reverse("rlhf:progress", args=[round.pk]), HTTP_HX_REQUEST="true")
    assert partial["HX-Refresh"] == "true"  # settled: the page reloads once and stops polling
    assert MetricPoint.objects.filter(run=reward).count() == 3


def test_generate_starts_a_labeling_round(staff_client, project_with_policy):
    from tests.support.rlhf import add_prompts

    add_prompts(project_with_policy, 3)
    response = staff_client.post(reverse("rlhf:generate", args=[project_with_policy.slug]), {"prompts": "2"})
    round = Round.objects.get()
    assert response.status_code == 302 and round.state == Round.State.GENERATING
    assert round.transitions.get().note == "2 prompts"
