import pytest

from models_app import services
from models_app.loading import model_cache
from labeling.models import Prompt


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    import torch

    torch.set_num_threads(1)  # the CI box has 2 cores shared by everyone


@pytest.fixture(autouse=True)
def _model_store(settings, tmp_path):
    settings.MODEL_STORE = tmp_path / "model-store"
    yield
    model_cache().clear()


@pytest.fixture
def tiny_policy(db, tiny_model_dir):
    return services.register_model(tiny_model_dir, name="tiny-base")


@pytest.fixture
def make_prompts(db):
    def make(project, texts):
        return [Prompt.objects.create(project=project, messages=[{"role": "user", "content": t}]) for t in texts]

    return make
