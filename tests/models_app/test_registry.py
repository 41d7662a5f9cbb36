"""Registering model directories, LoRA adapters, deployments and rollback, the worker cache."""
import pytest

from models_app import services
from models_app.loading import ModelCache, load_policy, model_cache
from models_app.models import Deployment, ModelVersion
from models_app.services import ModelRegistryError


def test_register_a_local_model_directory_that_loads(tiny_policy, tiny_model_dir):
    assert tiny_policy.kind == "policy" and tiny_policy.status == "ready"
    assert tiny_policy.base_model == str(tiny_model_dir.resolve())
    # Registering the same directory under the same name again is a no-op.
    assert services.register_model(tiny_model_dir, name="tiny-base") == tiny_policy
    assert ModelVersion.objects.count() == 1


def test_a_directory_that_does_not_load_is_refused_with_a_clear_error(db, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "llama"')
    with pytest.raises(ModelRegistryError, match="does not load as a Hugging Face model"):
        services.register_model(broken)
    with pytest.raises(ModelRegistryError, match="is not a directory"):
        services.register_model(tmp_path / "nowhere")
    assert not ModelVersion.objects.exists()


def test_a_name_taken_by_another_directory_is_refused(tiny_policy, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    with pytest.raises(ModelRegistryError, match="already exists"):
        services.register_model(other, name="tiny-base")


def test_lora_adapter_loads_over_its_parent_and_lineage_reaches_the_base(tiny_policy, tiny_model_dir, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    peft_model = get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    peft_model.save_pretrained(tmp_path / "adapter")
    adapter = services.register_model(tmp_path / "adapter", name="tiny-lora", parent=tiny_policy, is_adapter=True)

    assert adapter.base_model == tiny_policy.base_model
    assert adapter.lineage() == [adapter, tiny_policy]
    model, tokenizer = load_policy(adapter)
    assert tokenizer.padding_side == "left"
    assert not hasattr(model, "peft_config") or not model.peft_config  # merged into plain weights

    with pytest.raises(ModelRegistryError, match="needs the parent"):
        services.register_model(tmp_path / "adapter", name="orphan", is_adapter=True)


def test_deploy_keeps_history_and_rollback_restores_the_previous_version(tiny_policy, tiny_model_dir, make_project,
                                                                          admin_user):
    project = make_project()
    v2 = ModelVersion.objects.create(kind="policy", name="v2", parent=tiny_policy, artifact_dir=str(tiny_model_dir),
                                     base_model=tiny_policy.base_model)
    assert services.deployed_policy(project) is None
    services.deploy(project, tiny_policy, user=admin_user)
    services.deploy(project, v2, user=admin_user, note="round 1")
    assert services.deploy(project, v2) == Deployment.objects.get(is_active=True)  # idempotent
    assert services.deployed_policy(project) == v2

    back = services.rollback(project, user=admin_user)
    assert back.model_version == tiny_policy and back.is_active and back.deployed_by == admin_user
    assert "rollback from v2" in back.note
    assert services.deployed_policy(project) == tiny_policy
    assert list(Deployment.objects.filter(project=project).values_list("model_version__name", flat=True)) == [
        "tiny-base", "v2", "tiny-base"
    ]
    assert services.rollback(project, to=v2).model_version == v2


def test_rollback_without_history_and_deploying_a_reward_model_are_refused(tiny_policy, tiny_model_dir, make_project):
    project = make_project()
    with pytest.raises(ModelRegistryError, match="no earlier deployment"):
        services.rollback(project)
    reward = ModelVersion.objects.create(kind="reward", name="rm", artifact_dir=str(tiny_model_dir), base_model="x")
    with pytest.raises(ModelRegistryError, match="not a policy"):
        services.deploy(project, reward)


def test_model_cache_evicts_least_recently_used_past_count_and_bytes():
    import torch

    def loader(size):
        return lambda: (torch.nn.Linear(size, size, bias=False), None)

    cache = ModelCache(max_models=2, max_bytes=10**9)
    first = cache.get("a", loader(4))
    cache.get("b", loader(4))
    assert cache.get("a", loader(4)) == first  # a hit, and now the most recent
    cache.get("c", loader(4))
    assert "a" in cache and "c" in cache and "b" not in cache

    small = ModelCache(max_models=10, max_bytes=4 * 16 * 16)  # room for one 16x16 float32 layer
    small.get("x", loader(16))
    small.get("y", loader(16))
    assert len(small) == 1 and "y" in small


def test_load_policy_reuses_the_cached_model(tiny_policy):
    model, _ = load_policy(tiny_policy)
    assert load_policy(tiny_policy)[0] is model
    assert len(model_cache()) == 1


def test_register_model_command(tiny_model_dir, tmp_path, make_project, db):
    from django.core.management import CommandError, call_command

    project = make_project(name="Cmd")
    call_command("register_model", str(tiny_model_dir), "--name", "from-cli", "--deploy", project.slug)
    assert services.deployed_policy(project).name == "from-cli"
    with pytest.raises(CommandError, match="is not a directory"):
        call_command("register_model", str(tmp_path / "missing"))


def test_admin_add_page_refuses_a_directory_that_does_not_load(client, admin_user, tmp_path, tiny_model_dir):
    from django.urls import reverse

    admin_user.is_superuser = True
    admin_user.save()
    client.force_login(admin_user)
    url = reverse("admin:models_app_modelversion_add")
    form = {"kind": "policy", "name": "via-admin", "artifact_dir": str(tmp_path), "status": "ready", "metrics": "{}"}
    response = client.post(url, form)
    assert response.status_code == 200 and "does not load as a Hugging Face model" in response.content.decode()
    assert client.post(url, {**form, "artifact_dir": str(tiny_model_dir)}).status_code == 302
    assert ModelVersion.objects.get(name="via-admin").base_model == str(tiny_model_dir)
