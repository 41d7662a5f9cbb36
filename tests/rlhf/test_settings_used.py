"""The round page shows the settings each run trained with: the measured defaults, and what the
round itself set, marked as such."""
import re

import pytest
from django.urls import reverse

from rlhf import services


@pytest.fixture
def no_enqueue(monkeypatch):
    monkeypatch.setattr(services, "enqueue_chain", lambda round: None)


def setting_row(html, name):
    """(value, source) of the first settings row named `name` after the run's summary line."""
    match = re.search(rf"<tr><th>{name}</th><td><code>([^<]*)</code></td><td class=\"muted\">([^<]*)</td></tr>", html)
    return match.groups() if match else None


def test_each_run_shows_its_settings_and_which_the_round_set(client, admin_user, labeled_project, no_enqueue):
    round = services.launch_round(labeled_project, user=admin_user, algorithm="dpo",
                                  hyperparameters={"seed": 7, "policy": {"learning_rate": 5e-5}})
    client.force_login(admin_user)
    html = client.get(reverse("rlhf:detail", args=[round.pk])).content.decode()

    reward, dpo = (html.split(f"#{run.pk}: the settings it trained with")[1].split("</details>")[0]
                   for run in (round.runs.get(kind="reward"), round.runs.get(kind="dpo")))
    assert setting_row(reward, "learning_rate") == ("0.001", "default")  # the measured LoRA rate
    assert setting_row(reward, "lora") == ("true", "default")
    assert setting_row(dpo, "learning_rate") == ("5e-05", "set by this round")
    assert setting_row(dpo, "beta") == ("0.1", "default")
    assert setting_row(dpo, "seed") == ("7", "set by this round")
