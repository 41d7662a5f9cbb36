"""A project's judge (models_app.ProjectJudge): set, shown and cleared with the project's own
settings in the API, refused when it is not a reward model, and what a round's evaluation uses."""
import pytest
from rest_framework.test import APIClient

from models_app.models import ModelVersion, ProjectJudge
from rlhf.launcher import judge_for
from rlhf.models import Round

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_api(admin_user):
    api = APIClient()
    api.force_authenticate(admin_user)
    return api


@pytest.fixture
def judge(tmp_path):
    return ModelVersion.objects.create(kind="reward", name="public-judge", artifact_dir=str(tmp_path),
                                       base_model="tiny")


def test_it_sets_shows_and_clears_the_judge_in_the_project_api(staff_api, make_project, judge):
    project = make_project(name="Judged")
    url = f"/api/v1/projects/{project.slug}/"
    assert staff_api.get(url).json()["judge"] is None
    set_ = staff_api.patch(url, {"judge": judge.pk}, format="json")
    assert set_.status_code == 200 and set_.json()["judge"] == judge.pk
    assert ProjectJudge.objects.get(project=project).model_version == judge
    assert staff_api.get(url).json()["judge"] == judge.pk
    cleared = staff_api.patch(url, {"judge": None}, format="json")
    assert cleared.status_code == 200 and cleared.json()["judge"] is None
    assert not ProjectJudge.objects.exists()


def test_it_refuses_a_policy_as_judge_and_changes_nothing(staff_api, make_project, tmp_path):
    project = make_project(name="Judged")
    policy = ModelVersion.objects.create(kind="policy", name="a-policy", artifact_dir=str(tmp_path), base_model="tiny")
    refused = staff_api.patch(f"/api/v1/projects/{project.slug}/", {"judge": policy.pk, "description": "new"},
                              format="json")
    assert refused.status_code == 400 and "a judge is a reward model" in refused.json()["judge"][0]
    project.refresh_from_db()
    assert project.description != "new" and not ProjectJudge.objects.exists()


def test_a_project_created_with_a_judge_has_it(staff_api, judge):
    created = staff_api.post("/api/v1/projects/", {"name": "Born judged", "judge": judge.pk}, format="json")
    assert created.status_code == 201 and created.json()["judge"] == judge.pk
    assert ProjectJudge.objects.get().project.slug == created.json()["slug"]


def test_a_round_is_judged_by_the_project_judge_before_the_previous_reward_model(staff_api, make_project, judge,
                                                                                  tmp_path):
    project = make_project(name="Judged")
    earlier_rm = ModelVersion.objects.create(kind="reward", name="round-1-rm", artifact_dir=str(tmp_path),
                                             base_model="tiny")
    Round.objects.create(project=project, number=1, algorithm="dpo", reward_model=earlier_rm)
    second = Round.objects.create(project=project, number=2, algorithm="dpo")
    assert judge_for(second) == earlier_rm
    assert staff_api.patch(f"/api/v1/projects/{project.slug}/", {"judge": judge.pk}, format="json").status_code == 200
    assert judge_for(second) == judge


def test_listing_projects_reads_their_judges_without_a_query_each(staff_api, make_project, judge,
                                                                  django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    make_project(name="First")
    staff_api.patch("/api/v1/projects/first/", {"judge": judge.pk}, format="json")
    with CaptureQueriesContext(connection) as one:
        staff_api.get("/api/v1/projects/")
    for name in ("Second", "Third", "Fourth"):
        make_project(name=name)
    with django_assert_max_num_queries(len(one.captured_queries)):
        listed = staff_api.get("/api/v1/projects/").json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    assert {row["slug"]: row["judge"] for row in rows}["first"] == judge.pk and len(rows) == 4
