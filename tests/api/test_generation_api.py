"""Generation through the API, as the models page and the round page start it: a job with its
progress (POST /api/v1/generation-jobs/), and a labeling round whose candidates it writes
(POST /api/v1/rounds/generate/). The worker's part is tested in tests/models_app and tests/rlhf."""
import pytest

from models_app import services
from models_app.models import GenerationJob
from rlhf.models import Round

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _model_store(settings, tmp_path):
    settings.MODEL_STORE = tmp_path / "models"


@pytest.fixture
def policy(tiny_model_dir):
    return services.register_model(str(tiny_model_dir), kind="policy", name="tiny")


@pytest.fixture
def deployed(make_project, policy):
    project = make_project("Generate", candidates_per_prompt=2)
    for i in range(3):
        project.prompts.create(messages=[{"role": "user", "content": f"Question {i}?"}], external_id=f"q{i}")
    services.deploy(project, policy)
    return project


def start(api, body):
    return api.post("/api/v1/generation-jobs/", body, format="json")


def test_it_queues_a_job_with_its_settings_and_shows_its_progress(admin_api, deployed, policy):
    prompt_ids = list(deployed.prompts.order_by("id").values_list("id", flat=True))
    response = start(admin_api, {"project": deployed.slug, "prompts": prompt_ids[:2], "k": 3,
                                 "decoding": {"max_new_tokens": 8}})
    assert response.status_code == 202, response.content
    job = response.json()
    assert (job["status"], job["total"], job["done"], job["k"], job["model_version"]) == ("queued", 2, 0, 3, policy.pk)
    assert job["prompt_ids"] == prompt_ids[:2] and job["decoding"] == {"max_new_tokens": 8}
    listed = admin_api.get(f"/api/v1/generation-jobs/?project={deployed.slug}").json()["results"]
    assert [j["id"] for j in listed] == [job["id"]]
    assert admin_api.get(f"/api/v1/generation-jobs/{job['id']}/").json()["percent"] == 0


def test_without_prompts_it_queues_every_prompt_of_the_project(admin_api, deployed):
    response = start(admin_api, {"project": deployed.slug})
    assert response.status_code == 202 and response.json()["total"] == 3


@pytest.mark.parametrize("body, field, words", [
    ({"k": 1}, "k", "greater than or equal to 2"),
    ({"prompts": [999999]}, None, "999999 are not in project"),
    ({"decoding": {"temperature": -1}}, None, "temperature"),
])
def test_bad_settings_are_refused_at_once_and_queue_nothing(admin_api, deployed, body, field, words):
    response = start(admin_api, {"project": deployed.slug, **body})
    assert response.status_code == 400, response.content
    message = response.json()[field][0] if field else response.json()["detail"]
    assert words in message
    assert not GenerationJob.objects.exists()


def test_a_reward_model_cannot_write_candidates(admin_api, deployed, tiny_model_dir):
    reward = services.register_model(str(tiny_model_dir), kind="reward", name="tiny-rm")
    response = start(admin_api, {"project": deployed.slug, "model_version": reward.pk})
    assert response.status_code == 400 and "not a policy" in response.json()["detail"]


def test_a_project_without_a_deployed_policy_is_refused(admin_api, make_project):
    project = make_project("Nothing deployed")
    response = start(admin_api, {"project": project.slug})
    assert response.status_code == 400 and "No policy is deployed" in response.json()["detail"]


def test_only_admins_start_generation(annotator_api, deployed):
    assert start(annotator_api, {"project": deployed.slug}).status_code == 403


def test_a_labeling_round_generates_the_unanswered_prompts_through_a_job(admin_api, deployed, policy):
    response = admin_api.post("/api/v1/rounds/generate/", {"project": deployed.slug, "count": 2}, format="json")
    assert response.status_code == 201, response.content
    round = Round.objects.get(pk=response.json()["id"])
    assert (round.state, round.number, round.policy_in) == (Round.State.GENERATING, 1, policy)
    job = round.generation_jobs.get()
    assert (job.total, job.model_version) == (2, policy)


def test_a_labeling_round_needs_a_deployed_policy(admin_api, make_project):
    project = make_project("Nothing deployed")
    project.prompts.create(messages=[{"role": "user", "content": "Hi?"}], external_id="x")
    response = admin_api.post("/api/v1/rounds/generate/", {"project": project.slug}, format="json")
    assert response.status_code == 400 and "No policy is deployed" in response.json()["detail"]
    assert not Round.objects.exists()
