"""Round rules without a worker: the state machine, refusals, too-small data, the dataset split, the
deploy rule."""
import pytest

from labeling.models import Prompt
from rlhf import config, datasets, services
from rlhf.models import Round, TrainingRun
from tests.support.rlhf import add_prompts, annotate_all, hand_written_tasks


@pytest.fixture
def no_enqueue(monkeypatch):
    """Launching commits and enqueues; here nothing listens, so keep the chain in a list."""
    sent = []
    monkeypatch.setattr(services, "enqueue_chain", lambda round: sent.append(round.pk))
    return sent


def test_it_records_each_transition_with_who_when_and_why(project_with_policy, admin_user):
    round = Round.objects.create(project=project_with_policy, number=1)
    services.transition(round, Round.State.TRAINING, user=admin_user, note="go")
    recorded = round.transitions.get()
    assert (recorded.from_state, recorded.to_state, recorded.by) == ("draft", "training", admin_user)
    assert recorded.note == "go"
    assert recorded.at is not None


def test_it_refuses_an_illegal_transition_and_records_nothing(project_with_policy, admin_user):
    round = Round.objects.create(project=project_with_policy, number=1)
    services.transition(round, Round.State.TRAINING, user=admin_user, note="go")
    with pytest.raises(services.RoundError, match="is training; it cannot become deployed"):
        services.transition(round, Round.State.DEPLOYED, user=admin_user)
    round.refresh_from_db()
    assert round.state == Round.State.TRAINING and round.transitions.count() == 1


def test_no_pairs_fails_fast_with_what_is_missing(project_with_policy, admin_user, no_enqueue):
    with pytest.raises(services.RoundError, match="no preference pairs yet"):
        services.launch_round(project_with_policy, user=admin_user, algorithm="ppo")
    assert not Round.objects.exists() and not no_enqueue


def test_all_ties_fail_fast(project_with_policy, admin_user, no_enqueue):
    project = project_with_policy
    hand_written_tasks(project, add_prompts(project, 3))
    annotate_all(project, project.annotator, tie=True)
    with pytest.raises(services.RoundError, match="are ties"):
        services.launch_round(project, user=admin_user, algorithm="dpo")


def test_one_prompt_fails_fast(project_with_policy, admin_user, no_enqueue):
    project = project_with_policy
    hand_written_tasks(project, add_prompts(project, 1))
    annotate_all(project, project.annotator)
    with pytest.raises(services.RoundError, match="come from one prompt"):
        services.launch_round(project, user=admin_user, algorithm="dpo")


def test_a_filter_that_leaves_nothing_is_refused(labeled_project, admin_user, no_enqueue):
    labeled_project.pairs.update(agreement=0.5)
    with pytest.raises(services.RoundError, match="pass the data filters"):
        services.launch_round(labeled_project, user=admin_user, algorithm="dpo", data_filters={"min_agreement": 0.9})


def test_it_refuses_a_min_agreement_outside_zero_to_one(labeled_project, admin_user, no_enqueue):
    with pytest.raises(services.RoundError, match="min_agreement must be between 0 and 1"):
        services.launch_round(labeled_project, user=admin_user, algorithm="dpo", data_filters={"min_agreement": 2})


def test_it_refuses_bad_settings_and_launches_nothing(labeled_project, admin_user, no_enqueue):
    with pytest.raises(services.RoundError, match="Unknown algorithm"):
        services.launch_round(labeled_project, user=admin_user, algorithm="a2c")
    with pytest.raises(services.RoundError, match="Unknown policy hyper-parameter.*learning_rat"):
        services.launch_round(labeled_project, user=admin_user, algorithm="dpo",
                              hyperparameters={"policy": {"learning_rat": 1e-5}})
    with pytest.raises(services.RoundError, match="Unknown deploy rule"):
        services.launch_round(labeled_project, user=admin_user, algorithm="dpo", deploy_rule={"win": 1})
    assert not Round.objects.exists()


def test_it_plans_the_runs_in_order_and_enqueues_once_committed(labeled_project, admin_user, no_enqueue,
                                                                django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        round = services.launch_round(labeled_project, user=admin_user, algorithm="grpo",
                                      hyperparameters={"policy": {"num_generations": 4}, "sft": {"enabled": True}})
    assert round.state == Round.State.TRAINING and no_enqueue == [round.pk]
    assert list(round.runs.values_list("kind", flat=True)) == ["sft", "reward", "grpo", "eval"]
    assert round.runs.get(kind="grpo").config["num_generations"] == 4


def test_it_refuses_a_launch_while_a_round_trains(labeled_project, admin_user, no_enqueue):
    services.launch_round(labeled_project, user=admin_user, algorithm="grpo")
    with pytest.raises(services.RoundError, match="still training"):
        services.launch_round(labeled_project, user=admin_user, algorithm="dpo")


def test_retry_deploy_and_rollback_refuse_a_training_round(labeled_project, admin_user, no_enqueue):
    round = services.launch_round(labeled_project, user=admin_user, algorithm="dpo")
    with pytest.raises(services.RoundError, match="only a failed or cancelled round"):
        services.retry_round(round, user=admin_user)
    with pytest.raises(services.RoundError, match="only an evaluated round"):
        services.deploy_round(round, user=admin_user)
    with pytest.raises(services.RoundError, match="only a deployed round"):
        services.rollback_round(round, user=admin_user)


def test_it_retries_a_cancelled_round_with_fresh_runs(labeled_project, admin_user, no_enqueue):
    round = services.launch_round(labeled_project, user=admin_user, algorithm="dpo")
    services.cancel_round(round, user=admin_user)
    assert set(round.runs.values_list("status", flat=True)) == {TrainingRun.Status.CANCELLED}
    services.retry_round(round, user=admin_user)
    round.refresh_from_db()
    assert round.state == Round.State.TRAINING
    assert set(round.runs.values_list("status", flat=True)) == {TrainingRun.Status.PENDING}
    assert list(round.transitions.values_list("to_state", flat=True)) == ["training", "cancelled", "training"]


def test_the_dataset_split_is_by_prompt(labeled_project):
    project = labeled_project
    train = datasets.preference_rows(project, {}, split=Prompt.Split.TRAIN)
    heldout = datasets.preference_rows(project, {}, split=Prompt.Split.HELDOUT)
    assert len(train) + len(heldout) == 6
    train_prompts = {r["prompt"][0]["content"] for r in train}
    assert not train_prompts & {r["prompt"][0]["content"] for r in heldout}
    assert all(r["chosen"][0]["content"].startswith("Here") for r in train + heldout)


def test_the_dataset_leaves_gold_pairs_out(labeled_project):
    project = labeled_project
    project.pairs.filter(pk=project.pairs.first().pk).update(is_gold=True)
    assert len(datasets.preference_rows(project, {}, split=Prompt.Split.TRAIN)) + len(
        datasets.preference_rows(project, {}, split=Prompt.Split.HELDOUT)) == 5


def test_reaper_leaves_live_runs_alone(labeled_project, admin_user, no_enqueue):
    round = services.launch_round(labeled_project, user=admin_user, algorithm="dpo")
    run = round.runs.get(kind="reward")
    assert services.start_run(run)
    assert services.reap_lost_runs() == 0
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.RUNNING


METRICS = {"win_rate": 0.6, "kl_to_old": 0.2, "rm_accuracy_heldout": None}


def test_an_empty_deploy_rule_never_deploys():
    assert config.deploy_rule_holds({}, METRICS) == (False, "")


def test_a_deploy_rule_holds_only_when_every_threshold_does():
    assert config.deploy_rule_holds({"min_win_rate": 0.55, "max_kl": 0.5}, METRICS)[0]
    assert not config.deploy_rule_holds({"min_win_rate": 0.7}, METRICS)[0]


def test_a_deploy_rule_on_a_figure_not_measured_does_not_hold():
    holds, why = config.deploy_rule_holds({"min_rm_accuracy": 0.6}, METRICS)
    assert not holds and "not measured" in why
