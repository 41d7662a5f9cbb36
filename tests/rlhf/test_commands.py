"""The command line: launch_round --wait against a real worker, evaluate_reward_model on a file."""
import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from labeling.formats import conversational_row, standard_row
from models_app import services as models
from rlhf.models import Round

from tests.support.rlhf import TINY


@pytest.fixture
def reward_version(db, tiny_model_dir, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = tmp_path / "rm"
    model = AutoModelForSequenceClassification.from_pretrained(str(tiny_model_dir), num_labels=1)
    model.save_pretrained(path)
    AutoTokenizer.from_pretrained(str(tiny_model_dir)).save_pretrained(path)
    return models.register_model(path, kind="reward", name="tiny-rm")


@pytest.mark.parametrize("row", [standard_row, conversational_row])
def test_evaluate_reward_model_prints_accuracy_last(reward_version, tmp_path, row):
    messages = [{"role": "user", "content": "Say something helpful."}]
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(json.dumps(row(i, messages, f"good answer {i}", f"bad {i}", 1.0)) for i in range(5)))
    out = StringIO()
    call_command("evaluate_reward_model", reward_version.name, str(path), stdout=out)
    last = out.getvalue().strip().splitlines()[-1]
    assert 0.0 <= float(last) <= 1.0 and last.count(".") == 1


def test_evaluate_reward_model_refuses_a_bad_file(reward_version, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "x", "chosen": "a"}\n')
    with pytest.raises(CommandError, match="bad.jsonl:1: a preference row needs chosen and rejected"):
        call_command("evaluate_reward_model", str(reward_version.pk), str(path))
    with pytest.raises(CommandError, match="No reward model version"):
        call_command("evaluate_reward_model", "nope", str(path))


@pytest.mark.celery
def test_launch_round_waits_and_prints_progress(worker, labeled_project, admin_user):
    out = StringIO()
    call_command("launch_round", labeled_project.slug, "--algorithm", "dpo", "--hp", json.dumps(TINY),
                 "--deploy-rule", '{"min_win_rate": 0}', "--user", admin_user.username, "--wait", stdout=out)
    text = out.getvalue()
    assert "launched (dpo)" in text and "%] training" in text and "win_rate:" in text
    assert text.strip().splitlines()[-1] == "Round 1: deployed"
    assert Round.objects.get().started_by == admin_user


def test_launch_round_refusal_is_a_command_error(project_with_policy):
    with pytest.raises(CommandError, match="no preference pairs yet"):
        call_command("launch_round", project_with_policy.slug, "--algorithm", "ppo")
