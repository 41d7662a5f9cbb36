"""Round rules without a worker: the state machine, refusals, too-small data, the deploy rule."""
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


def test_transitions_are_recorded_and_illegal_ones_refused(project_with_policy, admin_user):
    round = Round.objects.create(project=project_with_policy, number=1)
    services.transition(round, Round.State.TRAINING, user=admin_user, note="go")
    recorded = round.transitions.get()
    assert (recorded.from_state, recorded.to_state, recorded.by) == ("draft", "training", admin_user)
    assert recorded.note == "go"
    assert recorded.at is not None
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
    with pytest.raises(services.RoundError, match="min_agreement must be between 0 and 1"):
        services.launch_round(labeled_project, user=admin_user, algorithm="dpo", data_filters={"min_agreement": 2})


def test_launch_plans_the_runs_and_refuses_bad_settings(labeled_project, admin_user, no_enqueue,
                                                        django_capture_on_commit_callbacks):
    with pytest.raises(services.RoundError, match="Unknown algorithm"):
        services.launch_round(labeled_project, user=admin_user, algorithm="a2c")
    with pytest.raises(services.RoundError, match="Unknown policy hyper-parameter.*learning_rat"):
        services.launch_round(labeled_project, user=admin_user, algorithm="dpo",
                              hyperparameters={"policy": {"learning_rat": 1e-5}})
    with pytest.raises(services.RoundError, match="Unknown deploy rule"):
        services.launch_round(labeled_project, user=admin_user, algorithm="dpo", deploy_rule={"win": 1})
    assert not Round.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        round = services.launch_round(labeled_project, user=admin_user, algorithm="grpo",
                                      hyperparameters={"policy": {"num_generations": 4}, "sft": {"enabled": True}})
    assert round.state == Round.State.TRAINING and no_enqueue == [round.pk]
    assert list(round.runs.values_list("kind", flat=True)) == ["sft", "reward", "grpo", "eval"]
    assert round.runs.get(kind="grpo").config["num_generations"] == 4
    with pytest.raises(services.RoundError, match="still training"):
        services.launch_round(labeled_project, user=admin_user, algorithm="dpo")


def test_retry_and_deploy_refuse_the_wrong_states(labeled_project, admin_user, no_enqueue):
    round = services.launch_round(labeled_project, user=admin_user, algorithm="dpo")
    with pytest.raises(services.RoundError, match="only a failed or cancelled round"):
        services.retry_round(round, user=admin_user)
    with pytest.raises(services.RoundError, match="only an evaluated round"):
        services.deploy_round(round, user=admin_user)
    with pytest.raises(services.RoundError, match="only a deployed round"):
        services.rollback_round(round, user=admin_user)
    services.cancel_round(round, user=admin_user)
    assert set(round.runs.values_list("status", flat=True)) == {TrainingRun.Status.CANCELLED}
    services.retry_round(round, user=admin_user)
    round.refresh_from_db()
    assert round.state == Round.State.TRAINING
    assert set(round.runs.values_list("status", flat=True)) == {TrainingRun.Status.PENDING}
    assert list(round.transitions.values_list("to_state", flat=True)) == ["training", "cancelled", "training"]


def test_dataset_split_is_by_prompt_and_excludes_gold(labeled_project):
    project = labeled_project
    train = datasets.preference_rows(project, {}, split=Prompt.Split.TRAIN)
    heldout = datasets.preference_rows(project, {}, split=Prompt.Split.HELDOUT)
    assert len(train) + len(heldout) == 6
    train_prompts = {r["prompt"][0]["content"] for r in train}
    assert not train_prompts & {r["prompt"][0]["content"] for r in heldout}
    assert all(r["chosen"][0]["content"].startswith("Here") for r in train + heldout)
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


def test_deploy_rule():
    metrics = {"win_rate": 0.6, "kl_to_old": 0.2, "rm_accuracy_heldout": None}
    assert config.deploy_rule_holds({}, metrics) == (False, "")
    assert config.deploy_rule_holds({"min_win_rate": 0.55, "max_kl": 0.5}, metrics)[0]
    assert not config.deploy_rule_holds({"min_win_rate": 0.7}, metrics)[0]
    holds, why = config.deploy_rule_holds({"min_rm_accuracy": 0.6}, metrics)
    assert not holds and "not measured" in why
