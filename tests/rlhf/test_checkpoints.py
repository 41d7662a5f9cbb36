"""Checkpoints: resume skips a half-written one; a run that succeeds deletes its intermediate
checkpoints (its model version's artifact stays) unless RLHF_KEEP_CHECKPOINTS; a failed or
cancelled run keeps them, for the retry to resume from."""
from pathlib import Path

import pytest

from rlhf import services, trainers
from rlhf.models import TrainingRun
from rlhf.trainers import last_checkpoint


def test_resume_skips_a_checkpoint_left_half_written(tmp_path):
    for step, complete in [(10, True), (20, True), (30, False)]:
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        if complete:
            (folder / "trainer_state.json").write_text("{}")
    assert last_checkpoint(tmp_path) == str(tmp_path / "checkpoint-20")
    assert last_checkpoint(tmp_path / "missing") is None


@pytest.fixture
def reward_run(labeled_project, admin_user, transactional_db):
    """A planned round whose reward run saves a checkpoint every step; this test process runs it."""
    round = services.launch_round(labeled_project, user=admin_user, algorithm="dpo", enqueue=False, hyperparameters={
        "reward": {"max_steps": 3, "save_steps": 1, "per_device_train_batch_size": 2}})
    return round.runs.get(kind="reward")


def checkpoints(run):
    run.refresh_from_db()
    return sorted(p.name for p in Path(run.checkpoint_dir).glob("checkpoint-*")) if run.checkpoint_dir else []


@pytest.mark.slow
def test_a_run_that_succeeds_leaves_no_checkpoints(reward_run, settings):
    settings.RLHF_KEEP_CHECKPOINTS = False
    assert trainers.execute(reward_run) == TrainingRun.Status.SUCCEEDED
    assert checkpoints(reward_run) == [] and reward_run.checkpoint_dir
    from models_app.loading import artifact_path

    version = reward_run.model_versions.get()
    assert (artifact_path(version) / "config.json").is_file()  # the artifact stays


@pytest.mark.slow
def test_the_setting_keeps_them(reward_run, settings):
    settings.RLHF_KEEP_CHECKPOINTS = True
    assert trainers.execute(reward_run) == TrainingRun.Status.SUCCEEDED
    assert checkpoints(reward_run) == ["checkpoint-3"]  # save_total_limit 1: the last


@pytest.mark.slow
def test_a_failed_run_keeps_them_for_the_retry(reward_run, settings, monkeypatch):
    settings.RLHF_KEEP_CHECKPOINTS = False

    def disk_full(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(trainers, "save_version", disk_full)
    assert trainers.execute(reward_run) == TrainingRun.Status.FAILED
    assert checkpoints(reward_run) == ["checkpoint-3"]
