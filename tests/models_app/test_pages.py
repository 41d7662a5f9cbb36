"""The /models/ pages as a staff user sees them."""
import pytest
from django.urls import reverse

from labeling.models import Candidate
from models_app import services
from models_app.models import Deployment, ModelVersion


@pytest.fixture
def staff_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def project(make_project, tiny_policy):
    project = make_project(name="Pages", mode="ranking", candidates_per_prompt=2, decoding_config={"max_new_tokens": 4})
    services.deploy(project, tiny_policy)
    return project


def test_pages_are_for_staff_only(client, annotator, project):
    client.force_login(annotator)
    assert client.get(reverse("models_app:versions")).status_code == 403  # the app's page, as everywhere


def test_version_list_detail_and_candidate_lineage(staff_client, project, tiny_policy, tiny_model_dir, make_prompts):
    child = ModelVersion.objects.create(kind="policy", name="tiny-round-1", parent=tiny_policy,
                                        artifact_dir=str(tiny_model_dir), base_model=tiny_policy.base_model)
    services.deploy(project, child)
    [task] = services.generate_candidates(project, make_prompts(project, ["Hi"]))
    candidate = task.candidates.first()

    page = staff_client.get(reverse("models_app:versions")).content.decode()
    assert "tiny-round-1" in page and "tiny-base" in page and "Pages" in page

    page = staff_client.get(reverse("models_app:candidate", args=[candidate.pk])).content.decode()
    assert page.index("tiny-round-1") < page.index("tiny-base") < page.index(tiny_policy.base_model)
    assert "max_new_tokens" in page

    page = staff_client.get(reverse("models_app:version", args=[child.pk])).content.decode()
    assert "Candidates it wrote (2)" in page and "tiny-base" in page


def test_rollback_in_one_action(staff_client, project, tiny_policy, tiny_model_dir, admin_user):
    v2 = ModelVersion.objects.create(kind="policy", name="v2", artifact_dir=str(tiny_model_dir), base_model="x")
    services.deploy(project, v2)
    response = staff_client.post(reverse("models_app:project_rollback", args=[project.slug]), follow=True)
    assert "Rolled back: tiny-base now serves Pages." in response.content.decode()
    assert services.deployed_policy(project) == tiny_policy
    assert Deployment.objects.get(project=project, is_active=True).deployed_by == admin_user


def test_decoding_settings_form_saves_and_refuses_bad_values(staff_client, project):
    url = reverse("models_app:project_settings", args=[project.slug])
    form = {"strategy": "sample", "top_p": "0.9", "max_new_tokens": "32", "blocklist": "darn\n",
            "patterns": "", "flagged_candidates": "hide", "long_prompts": "refuse"}
    assert staff_client.post(url, form).status_code == 302
    project.refresh_from_db()
    assert project.decoding_config == {"strategy": "sample", "top_p": 0.9, "max_new_tokens": 32}
    assert project.moderation_blocklist == ["darn"] and project.flagged_candidates == "hide"
    assert project.long_prompts == "refuse"

    response = staff_client.post(url, {**form, "top_p": "1.5", "patterns": "(oops"})
    assert response.status_code == 400
    page = response.content.decode()
    assert "top_p must be in (0, 1]" in page and "not a valid regular expression" in page
    project.refresh_from_db()
    assert project.decoding_config["top_p"] == 0.9


def test_playground_shows_answers_side_by_side(staff_client, tiny_policy, tiny_model_dir):
    other = ModelVersion.objects.create(kind="policy", name="tiny-copy", artifact_dir=str(tiny_model_dir),
                                        base_model="x")
    response = staff_client.post(reverse("models_app:playground"), {
        "prompt": "Explain the reward", "versions": [tiny_policy.pk, other.pk], "answers": 2,
        "strategy": "sample", "max_new_tokens": 6, "seed": 3,
    })
    page = response.content.decode()
    assert response.status_code == 200
    assert page.count('class="turn turn-assistant answer"') == 4
    assert "tiny-base" in page and "tiny-copy" in page and "seed 3" in page
    assert not Candidate.objects.exists()

    response = staff_client.post(reverse("models_app:playground"), {
        "prompt": "Hi", "versions": [tiny_policy.pk], "answers": 2, "strategy": "greedy",
    })
    assert "greedy decoding gives one answer" in response.content.decode()


def test_project_page_shows_generation_progress(staff_client, project, make_prompts):
    from models_app.models import GenerationJob

    GenerationJob.objects.create(project=project, total=4, done=1, status="running")
    page = staff_client.get(reverse("models_app:project", args=[project.slug])).content.decode()
    assert "1 of 4 prompts (25%)" in page and 'hx-trigger="every 2s"' in page
    partial = staff_client.get(reverse("models_app:project_jobs", args=[project.slug])).content.decode()
    assert "Running" in partial


def test_generated_candidates_record_a_cut_and_its_lineage_page_shows_it(staff_client, project, make_prompts):
    [task] = services.generate_candidates(project, make_prompts(project, ["Hi"]), decoding={"seed": 3})
    candidate = task.candidates.first()
    assert candidate.decoding["finish_reason"] == "length"  # 4 random tokens: cut
    page = staff_client.get(reverse("models_app:candidate", args=[candidate.pk])).content.decode()
    assert "Cut at the token limit: the model reached 4 new tokens" in page
    version_page = staff_client.get(reverse("models_app:version", args=[candidate.model_version_id])).content.decode()
    assert "cut at the token limit</span>" in version_page

    Candidate.objects.filter(pk=candidate.pk).update(decoding={**candidate.decoding, "finish_reason": "stop"})
    page = staff_client.get(reverse("models_app:candidate", args=[candidate.pk])).content.decode()
    assert "Cut at the token limit" not in page


def test_the_generation_panel_counts_answers_models_wrote_without_any_job(staff_client, project, make_prompts):
    """e.g. a project whose answers were imported with their model, or written before jobs existed."""
    services.generate_candidates(project, make_prompts(project, ["Hi", "Ho"]))
    panel = staff_client.get(reverse("models_app:project_jobs", args=[project.slug])).content.decode()
    assert "No generation yet" not in panel
    assert "Answers written by models:" in panel and ">tiny-base</a>: 4" in panel


def test_the_panel_stops_polling_and_reloads_the_page_once_the_last_job_finished(staff_client, project):
    from models_app.models import GenerationJob

    job = GenerationJob.objects.create(project=project, total=2, done=1, status="running")
    url = reverse("models_app:project_jobs", args=[project.slug])
    running = staff_client.get(url, {"polling": 1}, headers={"HX-Request": "true"})
    assert 'hx-trigger="every 2s"' in running.content.decode() and "HX-Refresh" not in running
    GenerationJob.objects.filter(pk=job.pk).update(status="succeeded", done=2)
    done = staff_client.get(url, {"polling": 1}, headers={"HX-Request": "true"})
    assert done["HX-Refresh"] == "true" and "every 2s" not in done.content.decode()
    first_load = staff_client.get(url, headers={"HX-Request": "true"})  # the page's first load: no reload loop
    assert "HX-Refresh" not in first_load


def test_a_queued_default_policy_job_says_what_it_waits_for(staff_client, make_project):
    from models_app.models import GenerationJob

    project = make_project(name="Fresh demo")
    GenerationJob.objects.create(project=project, total=3, prepare_default_policy=True)
    panel = staff_client.get(reverse("models_app:project_jobs", args=[project.slug])).content.decode()
    assert "bundled default policy" in panel and "it starts when a worker on the gpu queue is free" in panel
    assert '<progress class="bar" max="100" value="0"' in panel


def test_a_running_job_says_how_far_its_batch_is(project, make_prompts, monkeypatch):
    """A CPU batch can take minutes: the job's phase tells the page which token it is at."""
    from models_app.models import GenerationJob

    phases = []
    real = services._set_phase
    monkeypatch.setattr(services, "_set_phase", lambda job, phase: (phases.append(phase), real(job, phase)))
    job = services.start_generation(project, make_prompts(project, ["Hi"]))
    services.run_generation_job(job.pk)
    assert "tiny-base is writing: batch 1 of 1, token 1 of up to 4" in phases
    assert GenerationJob.objects.get(pk=job.pk).phase == ""  # cleared when it finished
