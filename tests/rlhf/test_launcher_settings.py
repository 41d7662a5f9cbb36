"""Launcher settings (accelerate's): the project's, overridden by the round's, checked with a
clear refusal; the command line they give; config files only from the configured folder."""
import os

import pytest
from rest_framework.test import APIClient

from models_app import services as models
from rlhf import config, launcher, services
from rlhf.models import Round


def refused(values, **kw):
    with pytest.raises(services.RoundError) as caught:
        config.launcher_settings(values, kw.get("round", {}))
    return str(caught.value)


def command(settings_values, gpus, monkeypatch, tmp_path, *, several=True):
    monkeypatch.setattr(launcher, "gpu_count", lambda: gpus)
    from labeling.models import Project

    round = Round(launcher=settings_values, project=Project(name="p", launcher={}))
    resolved = launcher.resolve_launch(round, several_processes=several)
    line = launcher.command_line("dpo", tmp_path / "config.yaml", resolved, several_processes=several)
    return " ".join(line[1:])


CORES = len(os.sched_getaffinity(0))


def test_the_defaults_are_one_process_on_a_cpu_and_every_gpu_otherwise(monkeypatch, tmp_path):
    assert command({}, 0, monkeypatch, tmp_path).startswith(
        f"launch --quiet --num_cpu_threads_per_process {CORES} --num_processes 1 --num_machines 1 "
        "--mixed_precision no --dynamo_backend no rlhf/training/dpo.py --config")
    four = command({}, 4, monkeypatch, tmp_path)
    assert four.startswith("launch --quiet --multi_gpu --num_processes 4 --num_machines 1 --main_process_port ")
    assert "--mixed_precision bf16" in four
    assert "--num_processes 1 " in command({}, 4, monkeypatch, tmp_path, several=False)  # the evaluation


def test_one_process_may_start_with_plain_python(monkeypatch, tmp_path, settings):
    settings.RLHF_SINGLE_PROCESS_RUNNER = "python"
    assert command({}, 0, monkeypatch, tmp_path).startswith("rlhf/training/dpo.py --config")
    assert "--multi_gpu --num_processes 2" in command({"num_processes": 2}, 0, monkeypatch, tmp_path)


def test_a_cpu_process_gets_the_cores_not_accelerates_one_thread(monkeypatch, tmp_path, settings):
    """accelerate launch sets OMP_NUM_THREADS=1 for a CPU process unless told: every core is said,
    shared out between the processes, or RLHF_TORCH_THREADS."""
    two = command({"num_processes": 2}, 0, monkeypatch, tmp_path)
    assert f"--num_cpu_threads_per_process {max(1, CORES // 2)} --multi_gpu --num_processes 2" in two
    assert "--num_cpu_threads_per_process" not in command({}, 2, monkeypatch, tmp_path)  # GPUs: torchrun's own
    settings.RLHF_TORCH_THREADS = 3
    assert "--num_cpu_threads_per_process 3 " in command({}, 0, monkeypatch, tmp_path)


def test_two_processes_on_a_cpu_and_two_machines(monkeypatch, tmp_path):
    two = command({"num_processes": 2, "main_process_port": 29555}, 0, monkeypatch, tmp_path)
    assert "--multi_gpu --num_processes 2 --num_machines 1 --main_process_port 29555 --mixed_precision no" in two
    cluster = command({"num_processes": 8, "num_machines": 2, "main_process_ip": "10.0.0.1",
                       "main_process_port": 29500, "mixed_precision": "fp16"}, 8, monkeypatch, tmp_path)
    assert cluster.startswith("launch --quiet --multi_gpu --num_processes 16 --num_machines 2 --machine_rank 0 "
                              "--main_process_ip 10.0.0.1 --main_process_port 29500 --mixed_precision fp16")


@pytest.mark.parametrize("values, words", [
    ({"num_processes": 0}, "launcher.num_processes must be at least 1"),
    ({"num_processes": "all"}, "launcher.num_processes must be a whole number"),
    ({"mixed_precision": "fp8"}, "launcher.mixed_precision must be one of no, fp16, bf16"),
    ({"main_process_ip": "10.0.0.1; rm -rf /"}, "launcher.main_process_ip must be an IP address or a host name"),
    ({"main_process_port": 80}, "launcher.main_process_port must be at least 1024"),
    ({"num_machines": 2}, "main_process_ip is needed when num_machines is above 1"),
    ({"num_machines": 2, "machine_rank": 2, "main_process_ip": "h"}, "machine_rank must be below num_machines"),
    ({"deepspeed": "z.json"}, "Unknown launcher setting(s) deepspeed"),
    ({"use_vllm": "yes"}, "launcher.use_vllm must be true or false"),
    ({"config_file": "zero2.yaml"}, "no launcher config directory is configured"),
])
def test_bad_settings_are_refused_with_the_reason(values, words, settings):
    settings.RANKLOOP_LAUNCHER_CONFIG_DIR = ""
    assert words in refused(values)


def test_a_config_file_must_be_inside_the_configured_folder(settings, tmp_path, monkeypatch):
    folder = tmp_path / "launcher-configs"
    folder.mkdir()
    (folder / "zero2.yaml").write_text("distributed_type: DEEPSPEED\n")
    (tmp_path / "secret.yaml").write_text("x: 1\n")
    (folder / "escape.yaml").symlink_to(tmp_path / "secret.yaml")
    settings.RANKLOOP_LAUNCHER_CONFIG_DIR = str(folder)
    for name in ("../secret.yaml", str(tmp_path / "secret.yaml"), "/etc/passwd"):
        assert "inside the launcher config directory" in refused({"config_file": name})
    assert "stay inside" in refused({"config_file": "escape.yaml"})
    assert "there are: escape.yaml, zero2.yaml" in refused({"config_file": "zero3.yaml"})
    line = command({"config_file": "zero2.yaml", "num_processes": 2}, 2, monkeypatch, tmp_path)
    assert f"--config_file {folder / 'zero2.yaml'} --num_processes 2" in line
    assert "--multi_gpu" not in line and "--mixed_precision" not in line  # the file says


def test_the_round_overrides_the_project_key_by_key():
    merged = config.launcher_settings({"num_processes": 4, "mixed_precision": "bf16"}, {"num_processes": 2})
    assert merged == {"num_processes": 2, "mixed_precision": "bf16"}


@pytest.fixture
def staff_api(admin_user):
    api = APIClient()
    api.force_authenticate(admin_user)
    return api


def test_the_api_refuses_bad_settings_with_a_400(staff_api, labeled_project, monkeypatch, tiny_model_dir):
    monkeypatch.setattr(services, "enqueue_chain", lambda round: None)
    url = f"/api/v1/projects/{labeled_project.slug}/"
    bad = staff_api.patch(url, {"launcher": {"num_processes": -1}}, format="json")
    assert bad.status_code == 400 and "launcher.num_processes must be at least 1" in bad.json()["launcher"][0]
    assert staff_api.patch(url, {"launcher": None}, format="json").status_code == 400
    good = staff_api.patch(url, {"launcher": {"num_processes": 1}}, format="json")
    assert good.status_code == 200 and good.json()["launcher"] == {"num_processes": 1}

    policy = models.deployed_policy(labeled_project)
    not_a_judge = staff_api.patch(url, {"judge": policy.pk}, format="json")
    assert not_a_judge.status_code == 400 and "a judge is a reward model" in not_a_judge.json()["judge"][0]

    launch = staff_api.post("/api/v1/rounds/", {"project": labeled_project.slug, "algorithm": "dpo",
                                                "launcher": {"mixed_precision": "fp8"}}, format="json")
    assert launch.status_code == 400 and "mixed_precision" in str(launch.json())
    assert not Round.objects.exists()
    launch = staff_api.post("/api/v1/rounds/", {"project": labeled_project.slug, "algorithm": "dpo",
                                                "launcher": {"num_processes": 2}}, format="json")
    assert launch.status_code == 201 and launch.json()["launcher"] == {"num_processes": 2}


def test_the_launch_page_says_what_is_wrong_with_its_launcher_settings(admin_client, labeled_project, monkeypatch):
    from django.urls import reverse

    monkeypatch.setattr(services, "enqueue_chain", lambda round: None)
    url = reverse("rlhf:project", args=[labeled_project.slug])
    page = admin_client.post(url, {"algorithm": "dpo", "launcher": '{"num_machines": 2}'})
    assert page.status_code == 400 and b"main_process_ip is needed when num_machines is above 1" in page.content
    assert not Round.objects.exists()
    admin_client.post(url, {"algorithm": "dpo", "launcher": '{"num_processes": 1}'})
    assert Round.objects.get().launcher == {"num_processes": 1}
