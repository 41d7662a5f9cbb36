"""A chart that an algorithm never fills says so, and names what the algorithm logs instead."""
import html
import re

import pytest
from django.urls import reverse

from rlhf.models import Round


def chart_note(client, round, group):
    page = client.get(reverse("rlhf:detail", args=[round.pk])).content.decode()
    figure = re.search(rf'<figure data-chart="{group}">(.*?)</figure>', page, re.S).group(1)
    note = re.search(r'<p class="help chart-note">(.*?)</p>', figure, re.S)
    return html.unescape(note.group(1)) if note else ""


@pytest.mark.parametrize("algorithm, hyperparameters, says", [
    ("dpo", {}, "DPO logs no KL while it trains"),
    ("grpo", {}, "GRPO logs kl only when beta > 0 (this round: beta 0.0)"),  # the default: no reference model
    ("grpo", {"policy": {"beta": 0.04}}, ""),
    ("ppo", {}, ""),
])
def test_the_kl_chart_says_why_it_is_empty(client, admin_user, project_with_policy, algorithm, hyperparameters,
                                           says):
    round = Round.objects.create(project=project_with_policy, number=1, algorithm=algorithm,
                                 state=Round.State.TRAINING, hyperparameters=hyperparameters)
    client.force_login(admin_user)
    note = chart_note(client, round, "kl")
    assert (says in note) if says else note == ""
    if algorithm == "dpo":
        assert "rewards/margins" in note  # what it logs instead
    assert chart_note(client, round, "loss") == ""
