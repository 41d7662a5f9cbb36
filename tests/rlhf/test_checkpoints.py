"""A stage run by the launcher in this process (no worker): what it leaves in the run's folder
(data snapshot, config, command line to rerun it by hand), checkpoints deleted once it succeeds
(the model version's artifact stays) unless RLHF_KEEP_CHECKPOINTS, kept when it fails (for the
retry to resume from), and a script that crashes fails its run with the crash's last lines."""
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from models_app import services as models
from rlhf import launcher, services
from rlhf.launcher import last_checkpoint
from rlhf.models import TrainingRun
from tests.support.rlhf import check_reward_model_metrics


def test_resume_skips_a_checkpoint_left_half_written(tmp_path):
    for step, complete in [(10, True), (20, True), (30, False)]:
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        if complete:
            (folder / "trainer_state.json").write_text("{}")
    assert last_checkpoint(tmp_path) == str(tmp_path / "checkpoint-20")
    assert last_checkpoint(tmp_path / "missing") is None


def test_the_setting_keeps_checkpoints(tmp_path, settings, project_with_policy):
    run = TrainingRun(kind="reward", checkpoint_dir=str(tmp_path))
    (tmp_path / "checkpoint-3").mkdir()
    settings.RLHF_KEEP_CHECKPOINTS = True
    launcher.discard_checkpoints(run)
    assert (tmp_path / "checkpoint-3").is_dir()
    settings.RLHF_KEEP_CHECKPOINTS = False
    launcher.discard_checkpoints(run)
    assert not (tmp_path / "checkpoint-3").exists()


@pytest.fixture
def reward_run(labeled_project, admin_user):
    """A planned round whose reward run saves a checkpoint every step; this test process runs it."""
    round = services.launch_round(labeled_project, user=admin_user, algorithm="dpo", enqueue=False, hyperparameters={
        "reward": {"max_steps": 3, "save_steps": 1, "per_device_train_batch_size": 2}})
    return round.runs.get(kind="reward")


def checkpoints(run):
    run.refresh_from_db()
    return sorted(p.name for p in Path(run.checkpoint_dir).glob("checkpoint-*")) if run.checkpoint_dir else []


@pytest.mark.slow
def test_a_run_that_succeeds_leaves_its_files_to_rerun_it_by_hand(reward_run, settings):
    from models_app.loading import artifact_path

    settings.RLHF_KEEP_CHECKPOINTS = False
    assert launcher.execute(reward_run) == TrainingRun.Status.SUCCEEDED, reward_run.error
    assert checkpoints(reward_run) == []
    reward_run.refresh_from_db()
    version = reward_run.output
    assert (artifact_path(version) / "config.json").is_file()  # the artifact stays
    assert version.parent == reward_run.round.policy_in and version.kind == "reward"
    check_reward_model_metrics(version, reward_run.round)
    assert reward_run.step == reward_run.total_steps == 3

    folder = Path(reward_run.checkpoint_dir)
    config = yaml.safe_load((folder / "config.yaml").read_text())
    assert config["max_steps"] == 3 and config["model_name_or_path"] == str(artifact_path(reward_run.round.policy_in))
    assert config["output_dir"] == str(folder) and config["train_file"] == str(folder / "train.jsonl")
    rows = [json.loads(line) for line in (folder / "train.jsonl").read_text().splitlines()]
    assert len(rows) == version.metrics["pairs_train"] and {"prompt", "chosen", "rejected"} <= set(rows[0])
    assert json.loads((folder / "launcher.json").read_text())["num_processes_per_machine"] == 1
    cores = len(os.sched_getaffinity(0))
    assert (f"accelerate launch --quiet --num_cpu_threads_per_process {cores} --num_processes 1 --num_machines 1 "
            f"--mixed_precision no --dynamo_backend no rlhf/training/reward.py --config {folder / 'config.yaml'}"
            ) in reward_run.command
    assert reward_run.command in (folder / "command.sh").read_text()

    # A user reruns the stage by hand with the recorded files and gets a model again.
    done = subprocess.run(["sh", str(folder / "command.sh")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (folder / "final" / "config.json").is_file()


@pytest.mark.slow
def test_a_failed_run_keeps_its_checkpoints_for_the_retry(reward_run, settings, monkeypatch):
    settings.RLHF_KEEP_CHECKPOINTS = False

    def disk_full(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(launcher, "register", disk_full)
    assert launcher.execute(reward_run) == TrainingRun.Status.FAILED
    assert checkpoints(reward_run) == ["checkpoint-3"]
    reward_run.refresh_from_db()
    assert reward_run.error == "No space left on device"
    assert not reward_run.round.runs.filter(status="succeeded").exists()


@pytest.mark.slow
def test_a_script_that_crashes_fails_its_run_with_the_last_lines_of_its_stderr(
        labeled_project, admin_user, tiny_model_dir, tmp_path):
    broken = tmp_path / "broken-policy"
    shutil.copytree(tiny_model_dir, broken)
    policy = models.register_model(broken, kind="policy", name="broken")
    models.deploy(labeled_project, policy, user=admin_user)
    weights = next(broken.glob("*.safetensors"))
    weights.write_bytes(b"not a safetensors file")  # loads no more: the script crashes on it
    round = services.launch_round(labeled_project, user=admin_user, algorithm="dpo", enqueue=False,
                                  hyperparameters={"reward": {"max_steps": 2}})
    run = round.runs.get(kind="reward")
    assert launcher.execute(run) == TrainingRun.Status.FAILED
    run.refresh_from_db()
    round.refresh_from_db()
    stderr = (Path(run.checkpoint_dir) / "stderr.log").read_text().strip().splitlines()
    assert run.error.startswith("The reward script failed (exit code 1):")
    assert run.error.endswith(stderr[-1]) and stderr[-1] in run.error  # the crash's own last line
    assert "safetensors" in run.error.lower() or "header" in run.error.lower(), run.error
    assert round.state == "failed" and stderr[-1] in round.error
    assert run.output is None
