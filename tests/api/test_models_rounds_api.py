"""Model versions, deployments and rounds through the API, on the models_app and rlhf services
(the training itself runs on Celery and is tested in tests/rlhf)."""
import pytest

from models_app.models import Deployment
from tests.support.api import rank_all

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _model_store(settings, tmp_path):
    settings.MODEL_STORE = tmp_path / "models"


@pytest.fixture
def labeled(make_project, make_tasks, annotator):
    project = make_project("Loop", annotators=[annotator], mode="ranking", candidates_per_prompt=3, heldout_percent=0)
    make_tasks(project, 3)
    rank_all(project, annotator)
    return project


def register(admin_api, path, name):
    return admin_api.post("/api/v1/model-versions/", {"path": str(path), "kind": "policy", "name": name},
                          format="json")


def test_register_deploy_and_roll_back(admin_api, labeled, tiny_model_dir):
    first = register(admin_api, tiny_model_dir, "tiny-v1")
    assert first.status_code == 201, first.content
    assert first.json()["lineage"] == [{"id": first.json()["id"], "name": "tiny-v1", "kind": "policy",
                                        "is_adapter": False}]
    assert register(admin_api, tiny_model_dir, "tiny-v1").json()["id"] == first.json()["id"]  # idempotent
    bad = register(admin_api, "/no/such/dir", "x")
    assert bad.status_code == 400 and "is not a directory" in bad.json()["detail"]
    second = register(admin_api, tiny_model_dir, "tiny-v2").json()

    for version in (first.json(), second):
        response = admin_api.post("/api/v1/deployments/", {"project": labeled.slug, "model_version": version["id"]},
                                  format="json")
        assert response.status_code == 201 and response.json()["is_active"]
    active = admin_api.get(f"/api/v1/deployments/?project={labeled.slug}&is_active=true").json()["results"]
    assert [d["model_version_name"] for d in active] == ["tiny-v2"]

    rolled = admin_api.post("/api/v1/deployments/rollback/", {"project": labeled.slug}, format="json")
    assert rolled.status_code == 201 and rolled.json()["model_version_name"] == "tiny-v1"
    assert Deployment.objects.get(project=labeled, is_active=True).model_version_id == first.json()["id"]


def test_round_launch_status_cancel_retry(admin_api, labeled, make_project, tiny_model_dir):
    refused = admin_api.post("/api/v1/rounds/", {"project": labeled.slug, "algorithm": "dpo"}, format="json")
    assert refused.status_code == 400 and "No policy is deployed" in refused.json()["detail"]
    version = register(admin_api, tiny_model_dir, "tiny-start").json()
    admin_api.post("/api/v1/deployments/", {"project": labeled.slug, "model_version": version["id"]}, format="json")
    empty = make_project("Empty")
    admin_api.post("/api/v1/deployments/", {"project": empty.slug, "model_version": version["id"]}, format="json")
    no_data = admin_api.post("/api/v1/rounds/", {"project": empty.slug, "algorithm": "dpo"}, format="json")
    assert no_data.status_code == 400 and "no preference pairs" in no_data.json()["detail"]
    typo = admin_api.post("/api/v1/rounds/", {"project": labeled.slug, "algorithm": "dpo",
                                              "hyperparameters": {"policy": {"learnin_rate": 1}}}, format="json")
    assert typo.status_code == 400 and "learnin_rate" in typo.json()["detail"]

    launched = admin_api.post("/api/v1/rounds/", {"project": labeled.slug, "algorithm": "dpo",
                                                  "data_filters": {"min_agreement": 0.5}}, format="json")
    assert launched.status_code == 201, launched.content
    round_ = launched.json()
    assert round_["state"] == "training" and [r["kind"] for r in round_["runs"]] == ["reward", "dpo", "eval"]
    assert admin_api.get(f"/api/v1/rounds/?project={labeled.slug}&state=training").json()["results"][0]["id"] == \
        round_["id"]

    deploy = admin_api.post(f"/api/v1/rounds/{round_['id']}/deploy/", {}, format="json")
    assert deploy.status_code == 409 and "only an evaluated round" in deploy.json()["detail"]
    cancelled = admin_api.post(f"/api/v1/rounds/{round_['id']}/cancel/")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    assert {r["status"] for r in cancelled.json()["runs"]} == {"cancelled"}
    assert admin_api.post(f"/api/v1/rounds/{round_['id']}/cancel/").status_code == 409
    retried = admin_api.post(f"/api/v1/rounds/{round_['id']}/retry/")
    assert retried.status_code == 200 and retried.json()["state"] == "training"
    assert {r["status"] for r in retried.json()["runs"]} == {"pending"}
    assert admin_api.post(f"/api/v1/rounds/{round_['id']}/rollback/").status_code == 409
