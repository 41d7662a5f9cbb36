"""The round page shows each evaluation figure with its 95% interval, the units it was measured on and
its verdict; a change the interval cannot separate from zero reads "no detectable change"; too few
held-out prompts are said; the judge's verdict stands beside the reward model's, with the prompts
on which they disagree; a deploy rule can require an interval's lower bound above a threshold."""
import re

import numpy as np
import pytest
from django.urls import reverse

from rlhf import config, services
from rlhf.evaluation import report
from rlhf.models import Round
from rlhf.training import stats


def evaluation(reward_diffs, *, wins=None, pairs=(0, 0), judge_diffs=None, prompts=None):
    """An evaluation as rlhf/training/evaluate.py writes it, from per-prompt figures."""
    n = len(reward_diffs)
    wins = wins if wins is not None else [0.5 + d / 4 for d in reward_diffs]
    prompts = prompts or [[{"role": "user", "content": f"question {i}"}] for i in range(n)]
    figures = {
        "reward_diff": stats.with_verdict(stats.mean_interval(reward_diffs), 0.0),
        "win_rate": stats.with_verdict(stats.bootstrap_interval(wins, resamples=2000), 0.5),
        "kl_new_old": stats.with_verdict(stats.mean_interval([0.1] * n), 0.0, up="changed", down="changed"),
        "rm_accuracy": {**stats.with_verdict(stats.wilson_interval(*pairs), 0.5, up="above chance",
                                             down="below chance"), "pairs": pairs[1], "correct": pairs[0]},
    }
    result = {**figures, "judge": None, "judge_disagreements": [], "per_prompt": [{"index": i} for i in range(n)],
              "figures": {"reward_gain": figures["reward_diff"]["mean"], "eval_prompts": n},
              "settings": {"samples_per_prompt": 4}}
    if judge_diffs is not None:
        result["judge"] = {"reward_diff": stats.with_verdict(stats.mean_interval(judge_diffs), 0.0),
                           "win_rate": stats.with_verdict(stats.bootstrap_interval([0.5 + d / 4 for d in judge_diffs],
                                                                                   resamples=2000), 0.5)}
        result["judge_disagreements"] = [
            {"index": i, "prompt": prompts[i], "reward_model_diff": r, "judge_diff": j}
            for i, (r, j) in enumerate(zip(reward_diffs, judge_diffs)) if r * j < 0]
    return result


rng = np.random.default_rng(0)
CLEAR_GAIN = list(0.5 + 0.2 * rng.standard_normal(64))
NO_CHANGE = list(0.3 * rng.standard_normal(64))


@pytest.fixture
def staff_client(client, admin_user):
    client.force_login(admin_user)
    return client


def round_page(client, round):
    return client.get(reverse("rlhf:detail", args=[round.pk])).content.decode()


def test_a_clear_gain_shows_its_interval_and_reads_gain(staff_client, project_with_policy):
    ev = evaluation(CLEAR_GAIN, pairs=(410, 500))
    round = Round.objects.create(project=project_with_policy, number=1, algorithm="dpo", state=Round.State.EVALUATED,
                                 metrics={"reward_gain": ev["reward_diff"]["mean"], "evaluation": ev})
    html = round_page(staff_client, round)
    low, high = ev["reward_diff"]["low"], ev["reward_diff"]["high"]
    row = re.search(r"<th>Reward gain[^<]*</th>(.*?)</tr>", html, re.S).group(1)
    assert f"[{low:.4f}, {high:.4f}]" in row and "64 prompts" in row and ">gain<" in row
    accuracy = re.search(r"<th>Reward model accuracy on held-out pairs</th>(.*?)</tr>", html, re.S).group(1)
    assert "0.8200" in accuracy and "500 pairs" in accuracy and "above chance" in accuracy
    assert "too-few-prompts" not in html
    assert "<th>evaluation</th>" not in html  # the nested figures are not dumped into the flat table


def test_a_change_the_interval_cannot_separate_from_zero_reads_no_detectable_change(staff_client, project_with_policy):
    ev = evaluation(NO_CHANGE)
    assert ev["reward_diff"]["low"] < 0 < ev["reward_diff"]["high"]
    round = Round.objects.create(project=project_with_policy, number=1, algorithm="dpo", state=Round.State.EVALUATED,
                                 metrics={"evaluation": ev})
    html = round_page(staff_client, round)
    row = re.search(r"<th>Reward gain[^<]*</th>(.*?)</tr>", html, re.S).group(1)
    assert "no detectable change" in row
    accuracy = re.search(r"<th>Reward model accuracy on held-out pairs</th>(.*?)</tr>", html, re.S).group(1)
    assert "not measured" in accuracy and "0 pairs" in accuracy


def test_too_few_held_out_prompts_are_said(staff_client, project_with_policy):
    ev = evaluation(CLEAR_GAIN[:3])
    round = Round.objects.create(project=project_with_policy, number=1, algorithm="dpo", state=Round.State.EVALUATED,
                                 metrics={"evaluation": ev})
    html = round_page(staff_client, round)
    assert re.search(r"Measured on 3 held-out prompts, fewer than the 64", html)


def test_an_evaluation_on_training_prompts_says_so(staff_client, project_with_policy):
    """With no held-out prompts the evaluation falls back to the training prompts (eval_split
    "train"): the page must not let that pass for a held-out figure."""
    ev = evaluation(CLEAR_GAIN)
    round = Round.objects.create(project=project_with_policy, number=1, algorithm="dpo", state=Round.State.EVALUATED,
                                 metrics={"evaluation": ev, "eval_split": "train"})
    assert 'id="training-prompts"' in round_page(staff_client, round)
    round.metrics["eval_split"] = "heldout"
    round.save()
    assert 'id="training-prompts"' not in round_page(staff_client, round)


def test_the_judge_verdict_stands_beside_the_reward_models_with_the_disagreements(staff_client, project_with_policy):
    judge = [-d for d in CLEAR_GAIN[:10]] + list(np.zeros(54) + 0.01 * rng.standard_normal(54))
    ev = evaluation(CLEAR_GAIN, judge_diffs=judge)
    round = Round.objects.create(project=project_with_policy, number=1, algorithm="dpo", state=Round.State.EVALUATED,
                                 metrics={"evaluation": ev})
    html = round_page(staff_client, round)
    assert "<th>Judge: reward gain (new − old)</th>" in html
    assert 'id="judge-differs"' in html  # the reward model says gain, the judge does not
    disagreements = re.search(r'<details id="judge-disagreements">(.*?)</details>', html, re.S).group(1)
    assert f"{len(ev['judge_disagreements'])} prompts where the judge" in disagreements
    assert "question 0" in disagreements


def test_a_round_without_intervals_still_shows_its_flat_figures(staff_client, project_with_policy):
    round = Round.objects.create(project=project_with_policy, number=1, algorithm="dpo", state=Round.State.EVALUATED,
                                 metrics={"win_rate": 0.61})
    html = round_page(staff_client, round)
    assert report(round.metrics) is None
    assert re.search(r"<th>win rate</th><td>0.6100</td>", html)


@pytest.mark.parametrize(("diffs", "holds"), [(CLEAR_GAIN, True), (NO_CHANGE, False)])
def test_the_deploy_rule_can_require_the_interval_above_zero(diffs, holds):
    rule = config.validate_deploy_rule({"min_reward_gain_ci_low": 0.0})
    ev = evaluation(diffs)
    ok, why = config.deploy_rule_holds(rule, {"reward_gain": ev["reward_diff"]["mean"], "evaluation": ev})
    assert ok is holds
    assert why.startswith("reward_gain_ci_low ") and ("meets" if holds else "misses") in why


def test_a_deploy_rule_on_an_interval_that_was_not_measured_does_not_hold():
    ok, why = config.deploy_rule_holds({"min_judge_win_rate_ci_low": 0.5}, {"evaluation": evaluation(CLEAR_GAIN)})
    assert not ok and why == "judge_win_rate_ci_low was not measured"
    ok, why = config.deploy_rule_holds({"min_reward_gain_ci_low": 0.0}, {"reward_gain": 0.4})
    assert not ok and why == "reward_gain_ci_low was not measured"


def test_an_unknown_interval_key_is_refused_with_the_known_ones():
    with pytest.raises(services.RoundError, match="min_reward_gain_ci_low"):
        config.validate_deploy_rule({"min_reward_gain_ci_lo": 0.0})
