"""The command line: launch_round --wait against a real worker, evaluate_reward_model on a file."""
import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from labeling.formats import conversational_row, standard_row
from models_app import services as models
from rlhf.models import Round
from tests.support import synthetic
from tests.support.rlhf import TINY_LEARNED_REWARD, check_round_figures, hold_out
from tests.support.training import HELDOUT_PAIRS, TRAIN_PAIRS, run_stage_in_process


@pytest.fixture(scope="module")
def marker_reward_model_dir(tiny_model_dir, tmp_path_factory):
    """The reward stage trained on pairs whose chosen answer always says the marker word
    (tests/support/synthetic.py): learnable, so it must rank held-out pairs of that kind well above
    chance. In this process: a few seconds on the tiny model."""
    folder = tmp_path_factory.mktemp("marker-reward-model")
    pairs = synthetic.write_jsonl(folder / "pairs.jsonl", synthetic.marker_pairs(TRAIN_PAIRS))
    with pytest.MonkeyPatch.context() as monkeypatch:
        out = run_stage_in_process("reward", folder, monkeypatch, "--model_name_or_path", str(tiny_model_dir),
                                   "--train_file", str(pairs), "--num_train_epochs", "3",
                                   "--per_device_train_batch_size", "4", "--learning_rate", "1e-3",
                                   "--max_length", "128")
    return out / "final"


@pytest.fixture
def reward_version(db, marker_reward_model_dir):
    return models.register_model(marker_reward_model_dir, kind="reward", name="tiny-rm")


def heldout_marker_file(path, row):
    """The held-out marker pairs (other prompts than the training pairs) as the export writes them."""
    lines = [json.dumps(row(pair["id"], pair["prompt"], pair["chosen"][0]["content"],
                            pair["rejected"][0]["content"], 1.0))
             for pair in synthetic.marker_pairs(HELDOUT_PAIRS, start=1000, seed=1)]
    path.write_text("\n".join(lines))
    return path


@pytest.mark.parametrize("row", [standard_row, conversational_row])
def test_evaluate_reward_model_prints_the_pair_count_then_the_accuracy(reward_version, tmp_path, row):
    path = heldout_marker_file(tmp_path / "pairs.jsonl", row)
    out = StringIO()
    call_command("evaluate_reward_model", reward_version.name, str(path), stdout=out)
    *_, count, last = out.getvalue().strip().splitlines()
    assert count == f"{HELDOUT_PAIRS} pairs, reward model {reward_version}"
    assert len(last.split(".")[1]) == 4  # the accuracy alone, 4 decimals
    assert float(last) >= 0.9, f"accuracy {last} on pairs a marker reward model should rank (chance: 0.5)"


def test_evaluate_reward_model_refuses_a_bad_file_by_its_line(reward_version, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "x", "chosen": "a"}\n')
    with pytest.raises(CommandError, match="bad.jsonl:1: a preference row needs chosen and rejected"):
        call_command("evaluate_reward_model", str(reward_version.pk), str(path))


def test_evaluate_reward_model_refuses_an_unknown_version(db, tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text('{"prompt": "x", "chosen": "a", "rejected": "b"}\n')
    with pytest.raises(CommandError, match="No reward model version 'nope'"):
        call_command("evaluate_reward_model", "nope", str(path))


@pytest.mark.celery
def test_launch_round_waits_and_prints_progress(worker, labeled_project, admin_user):
    """The round's reward model learns helpful over refusal, which the held-out pairs prefer too: the
    deploy rule on its held-out accuracy holds."""
    hold_out(labeled_project, 2)
    out = StringIO()
    call_command("launch_round", labeled_project.slug, "--algorithm", "dpo", "--hp", json.dumps(TINY_LEARNED_REWARD),
                 "--deploy-rule", '{"min_rm_accuracy": 0.9}', "--user", admin_user.username, "--wait", stdout=out)
    text = out.getvalue()
    assert "launched (dpo)" in text and "%] training" in text and "win_rate:" in text
    assert text.strip().splitlines()[-1] == "Round 1: deployed"
    round = Round.objects.get()
    assert round.started_by == admin_user
    assert round.metrics["pairs_heldout"] == 2 and round.metrics["rm_accuracy_heldout"] == 1.0
    assert round.transitions.get(to_state="deployed").note == (
        "auto-deploy: rm_accuracy_heldout 1.000 meets min_rm_accuracy 0.9")
    check_round_figures(round)


@pytest.mark.celery
def test_launch_round_leaves_a_round_its_rule_refuses_evaluated(worker, labeled_project, admin_user):
    """The same round, but the held-out pairs prefer the refusals: the reward model ranks them all
    wrong, and the rule does not deploy."""
    hold_out(labeled_project, 2, reversed_preferences=True)
    out = StringIO()
    call_command("launch_round", labeled_project.slug, "--algorithm", "dpo", "--hp", json.dumps(TINY_LEARNED_REWARD),
                 "--deploy-rule", '{"min_rm_accuracy": 0.9}', "--user", admin_user.username, "--wait", stdout=out)
    assert out.getvalue().strip().splitlines()[-1] == "Round 1: evaluated (awaiting a deploy decision)"
    round = Round.objects.get()
    assert round.metrics["pairs_heldout"] == 2 and round.metrics["rm_accuracy_heldout"] == 0.0
    note = round.transitions.filter(note__startswith="not deployed automatically").get().note
    assert note == "not deployed automatically: rm_accuracy_heldout 0.000 misses min_rm_accuracy 0.9"
    assert models.deployed_policy(labeled_project) == round.policy_in


def test_launch_round_refusal_is_a_command_error(project_with_policy):
    with pytest.raises(CommandError, match="no preference pairs yet"):
        call_command("launch_round", project_with_policy.slug, "--algorithm", "ppo")
