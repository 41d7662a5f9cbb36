"""The whole loop with a real Celery worker: generate, label, train, evaluate, deploy, generate again."""
import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from labeling.models import Candidate
from models_app import services as models
from models_app.models import ModelVersion
from rlhf import services
from rlhf.launcher import group_members, last_checkpoint
from rlhf.models import MetricPoint, Round, TrainingRun
from tests.support.rlhf import (
    TINY,
    TINY_PPO,
    add_prompts,
    annotate_all,
    check_reward_model_metrics,
    check_round_figures,
    hold_out,
    wait_for,
)

pytestmark = [pytest.mark.celery, pytest.mark.slow]


def state_of(round):
    round.refresh_from_db()
    return round.state


def wait_state(round, *states, timeout=300):
    return wait_for(lambda: state_of(round) in states and round, timeout=timeout,
                    what=f"round {round.number} to become {' or '.join(states)} (is {round.state})")


def process_group(run):
    return json.loads((Path(run.checkpoint_dir) / "process.json").read_text())["pgid"]


def test_ppo_round_closes_the_loop(worker, project_with_policy, admin_user, tiny_policy):
    project = project_with_policy
    prompts = add_prompts(project, 6)

    # Round 1: the deployed tiny policy writes the candidates annotators rank.
    first = services.start_labeling_round(project, prompts, user=admin_user, decoding={"max_new_tokens": 8})
    wait_state(first, Round.State.LABELING, Round.State.FAILED)
    assert first.state == Round.State.LABELING, first.error
    assert first.algorithm == ""  # chosen at launch
    written = Candidate.objects.filter(prompt__project=project)
    assert written.count() == 12 and set(written.values_list("model_version", flat=True)) == {tiny_policy.pk}
    assert annotate_all(project, project.annotator, prefer=lambda texts: max(range(2), key=lambda i: len(texts[i])))

    # Four PPO episodes at a tiny learning rate barely move the policy: the rule on KL holds. (The
    # default, LoRA's 1e-4 over 4 PPO epochs, is meant to move it, and sometimes breaks 0.01 here.)
    barely = {**TINY_PPO, "policy": {**TINY_PPO["policy"], "learning_rate": 3e-6}}
    launched = services.launch_round(project, user=admin_user, algorithm="ppo", hyperparameters=barely,
                                     deploy_rule={"max_kl": 0.01})
    assert launched.pk == first.pk  # the round in labeling goes on to training
    wait_for(lambda: first.runs.filter(kind="eval", status__in=["succeeded", "failed"]).exists()
             or state_of(first) == Round.State.FAILED, what="the evaluation")
    first.refresh_from_db()
    assert first.state == Round.State.DEPLOYED, first.error  # the rule deployed it
    assert abs(first.metrics["kl_to_old"]) < 0.01
    assert first.transitions.get(to_state="deployed").note == (
        f"auto-deploy: kl_to_old {first.metrics['kl_to_old']:.3f} meets max_kl 0.01")

    runs = {run.kind: run for run in first.runs.all()}
    assert [r.status for r in runs.values()] == ["succeeded"] * 3
    assert runs["ppo"].celery_id and runs["ppo"].step == runs["ppo"].total_steps > 0
    assert MetricPoint.objects.filter(run=runs["reward"], name="loss").exists()
    assert MetricPoint.objects.filter(run=runs["ppo"], name="objective/kl").exists()
    assert "rlhf/training/ppo.py --config" in runs["ppo"].command

    reward_model, policy = first.reward_model, first.policy_out
    assert reward_model.kind == ModelVersion.Kind.REWARD and reward_model.parent == tiny_policy
    assert reward_model.trained_by == runs["reward"]
    check_reward_model_metrics(reward_model, first)
    assert policy.kind == ModelVersion.Kind.POLICY and policy.parent == tiny_policy
    check_round_figures(first)
    evaluation = first.metrics["evaluation"]  # evaluate.py's whole output, as it wrote it
    assert evaluation["figures"]["win_rate"] == first.metrics["win_rate"]
    assert evaluation["settings"]["samples_per_prompt"] == 2
    assert len(evaluation["per_prompt"]) == first.metrics["eval_prompts"] <= 3
    assert evaluation["judge"] is None and first.metrics["judge_model"] is None  # no judge on a first round
    assert models.deployed_policy(project) == policy
    assert list(first.transitions.values_list("to_state", flat=True)) == [
        "generating", "labeling", "training", "evaluating", "evaluated", "deployed"]
    assert first.transitions.get(to_state="training").by == admin_user

    # Round 2: the next candidates come from the new policy.
    second = services.start_labeling_round(project, prompts[:2], user=admin_user, decoding={"max_new_tokens": 8})
    wait_state(second, Round.State.LABELING, Round.State.FAILED)
    new_tasks = second.tasks
    assert new_tasks.count() == 2
    assert set(Candidate.objects.filter(tasks__in=second.tasks).values_list("model_version", flat=True)) == {policy.pk}

    # Rollback puts the first policy back, and the round reads so.
    services.rollback_round(first, user=admin_user)
    assert models.deployed_policy(project) == tiny_policy
    assert state_of(first) == Round.State.ROLLED_BACK


@pytest.mark.parametrize("algorithm", ["grpo", "dpo"])  # RLOO: GRPO's launch path, another script
def test_each_algorithm_trains_and_waits_for_the_admin(worker, labeled_project, admin_user, algorithm):
    sft = algorithm == "dpo"  # SFT on the annotators' ideal answers first, once
    hyperparameters = TINY
    if sft:  # …and a checkpoint every step, which the runs delete once they succeed
        hyperparameters = {**TINY, "reward": {**TINY["reward"], "save_steps": 1},
                           "policy": {**TINY["policy"], "save_steps": 1},
                           "sft": {"enabled": True, "max_steps": 2, "save_steps": 1}}
    if algorithm == "grpo":  # LoRA once for each kind of model
        hyperparameters = {**TINY, "reward": {**TINY["reward"], "lora": True, "lora_r": 4},
                           "policy": {**TINY["policy"], "lora": True, "lora_r": 4}}
    round = services.launch_round(labeled_project, user=admin_user, algorithm=algorithm,
                                  hyperparameters=hyperparameters)
    wait_for(lambda: round.runs.filter(kind="eval", status__in=["succeeded", "failed"]).exists()
             or state_of(round) == Round.State.FAILED, what="the evaluation")
    round.refresh_from_db()
    assert round.state == Round.State.EVALUATED, round.error  # no deploy rule: an admin decides
    assert round.policy_out.trained_by.kind == algorithm
    if sft:
        sft_version = round.policy_out.parent
        assert sft_version.trained_by.kind == "sft" and sft_version.metrics["demonstrations"] > 0
        assert sft_version.parent == round.policy_in
    check_round_figures(round)
    check_reward_model_metrics(round.reward_model, round)
    for run in round.runs.exclude(checkpoint_dir=""):
        assert not list(Path(run.checkpoint_dir).glob("checkpoint-*")), f"{run} left checkpoints"
    services.deploy_round(round, user=admin_user)
    assert state_of(round) == Round.State.DEPLOYED
    assert models.deployed_policy(labeled_project) == round.policy_out


def test_cancel_stops_a_running_round(worker, labeled_project, admin_user):
    hp = {**TINY, "reward": {"max_steps": 2000, "per_device_train_batch_size": 2, "save_steps": 1}}
    round = services.launch_round(labeled_project, user=admin_user, algorithm="dpo", hyperparameters=hp)
    reward = round.runs.get(kind="reward")
    wait_for(lambda: TrainingRun.objects.get(pk=reward.pk).step >= 2, what="reward training to make progress")
    services.cancel_round(round, user=admin_user)
    assert state_of(round) == Round.State.CANCELLED
    reward = wait_for(lambda: (r := TrainingRun.objects.get(pk=reward.pk)).status == "cancelled" and r,
                      what="the run to stop")
    assert reward.step < 2000 and "cancelled at step" in reward.log_tail
    pgid = process_group(reward)
    assert group_members(pgid) == []  # accelerate and the script it started: none is left
    assert not (Path(reward.checkpoint_dir) / "final").exists() and reward.output is None
    assert last_checkpoint(Path(reward.checkpoint_dir))  # kept, for a retry to resume from
    assert set(round.runs.exclude(pk=reward.pk).values_list("status", flat=True)) == {"cancelled"}
    assert round.transitions.last().by == admin_user
    with pytest.raises(services.RoundError, match="only an unfinished round"):
        services.cancel_round(round, user=admin_user)


def test_worker_killed_mid_run_fails_the_round_and_retry_resumes(worker, labeled_project, admin_user):
    # Long enough that the run cannot finish between seeing step 7 and the kill (progress
    # writes lag by up to half a second, and tiny-model steps take milliseconds).
    steps = 400
    hp = {**TINY, "reward": {"max_steps": steps, "per_device_train_batch_size": 2, "save_steps": 5,
                             "logging_steps": 50, "learning_rate": 1e-3}}
    # The resumed reward model has learned helpful over refusal, which the held-out pairs prefer too.
    hold_out(labeled_project, 2)
    round = services.launch_round(labeled_project, user=admin_user, algorithm="dpo", hyperparameters=hp,
                                  deploy_rule={"min_rm_accuracy": 0.9})
    reward = round.runs.get(kind="reward")
    wait_for(lambda: TrainingRun.objects.get(pk=reward.pk).step >= 7, what="a checkpoint to be written")
    worker.kill()
    reward.refresh_from_db()
    assert reward.status == "running"  # nobody is left to say otherwise…
    pgid = process_group(reward)
    wait_for(lambda: not group_members(pgid), timeout=60, what="the training processes to die with their worker")

    # …until the reaper (beat) sees the heartbeat is gone.
    assert services.reap_lost_runs(now=timezone.now() + timedelta(minutes=10)) == 1
    reward.refresh_from_db()
    round.refresh_from_db()
    assert reward.status == "failed" and "stopped sending heartbeats" in reward.error
    assert round.state == Round.State.FAILED and "heartbeats" in round.error

    worker.start()
    services.retry_round(round, user=admin_user)
    wait_state(round, Round.State.DEPLOYED, Round.State.FAILED)
    assert round.state == Round.State.DEPLOYED, round.error
    reward.refresh_from_db()
    assert "resuming from" in reward.log_tail and reward.step == steps
    assert round.metrics["pairs_heldout"] == 2 and round.metrics["rm_accuracy_heldout"] == 1.0
    assert round.transitions.get(to_state="deployed").note == (
        "auto-deploy: rm_accuracy_heldout 1.000 meets min_rm_accuracy 0.9")
