import pytest

from labeling.models import Prompt
from models_app import services
from models_app.loading import model_cache


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


@pytest.fixture(scope="session")
def tiny_gguf(tiny_model_dir, tmp_path_factory):
    """The tiny model written as a GGUF file, as llama.cpp lays one out."""
    pytest.importorskip("gguf", reason="the gguf package is not installed")
    from .gguf_writer import write_llama_gguf

    return write_llama_gguf(tiny_model_dir, tmp_path_factory.mktemp("gguf") / "tiny.gguf")
