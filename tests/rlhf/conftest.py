"""Fixtures for the training rounds: a model store per run, a deployed tiny policy, annotated
data (the worker fixtures are in tests/conftest.py, the helpers in tests/support/rlhf.py)."""
import orjson
import pytest

from labeling import preference_import
from models_app import services as models
from tests.support.rlhf import add_prompts, annotate_all, hand_written_tasks


@pytest.fixture(scope="session")
def model_store(tmp_path_factory):
    return tmp_path_factory.mktemp("model-store")


@pytest.fixture(autouse=True)
def _model_store(settings, model_store):
    settings.MODEL_STORE = model_store


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    torch.set_num_threads(1)


@pytest.fixture
def tiny_policy(db, tiny_model_dir):
    return models.register_model(tiny_model_dir, kind="policy", name="tiny-base")


@pytest.fixture
def project_with_policy(make_project, make_user, admin_user, tiny_policy):
    ann = make_user("ann-rlhf")
    project = make_project("Loop", annotators=[ann], heldout_percent=25)
    models.deploy(project, tiny_policy, user=admin_user)
    project.annotator = ann
    return project


@pytest.fixture
def labeled_project(project_with_policy):
    """Six prompts with two hand-written candidates each, all ranked (helpful beats refusal), each
    with an ideal answer written by the annotator (for SFT)."""
    project = project_with_policy
    hand_written_tasks(project, add_prompts(project, 6))
    annotate_all(project, project.annotator, prefer=lambda texts: 0 if texts[0].startswith("Here") else 1,
                 ideal_answer="Here is the ideal answer, with an example.")
    return project


@pytest.fixture
def seeded(labeled_project):
    """Six labelled pairs and eight imported ones (import:hh)."""
    rows = [{"prompt": f"Imported question {i}?", "chosen": f"A good answer {i}.", "rejected": f"No {i}."}
            for i in range(8)]
    preference_import.import_preferences(labeled_project, b"\n".join(orjson.dumps(r) for r in rows), source="hh")
    return labeled_project
