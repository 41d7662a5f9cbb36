"""The apps form a one-way graph (tests/support/app_graph.py gives the order): no import and no
foreign key points up it, and services enqueue Celery tasks by name, never importing them."""
from pathlib import Path

import pytest

from tests.support import app_graph

ROOT = Path(__file__).resolve().parents[1]

# Foreign keys that still point up the order, each to be turned around (a known debt, listed so
# that no new one can appear unnoticed). Why each is still here is in docs/ARCHITECTURE.md.
KNOWN_UPWARD_RELATIONS = {
    "labeling.Candidate.model_version -> models_app.ModelVersion",
}


def test_it_finds_no_import_up_the_order():
    assert app_graph.upward_imports(ROOT) == []


def test_services_never_import_a_tasks_module():
    assert app_graph.services_importing_tasks(ROOT) == []


@pytest.mark.django_db
def test_no_new_foreign_key_points_up_the_order():
    assert set(app_graph.upward_relations()) <= KNOWN_UPWARD_RELATIONS


@pytest.mark.django_db
def test_the_known_upward_foreign_keys_are_still_there_or_leave_the_list():
    """A key turned around must leave KNOWN_UPWARD_RELATIONS, so the list stays true."""
    assert KNOWN_UPWARD_RELATIONS <= set(app_graph.upward_relations())


def test_it_would_catch_an_upward_import_even_inside_a_function(tmp_path):
    for app in app_graph.LEVELS:
        (tmp_path / app).mkdir()
    (tmp_path / "labeling" / "views.py").write_text("def f():\n    from rlhf.models import Round\n")
    (tmp_path / "rlhf" / "views.py").write_text("from serving import api\nfrom labeling import models\n")
    (tmp_path / "models_app" / "services.py").write_text("from .tasks import run\n")
    assert app_graph.upward_imports(tmp_path) == [
        "labeling/views.py:2 imports rlhf.models", "labeling/views.py:2 imports rlhf.models.Round",
        "rlhf/views.py:1 imports serving", "rlhf/views.py:1 imports serving.api"]
    assert app_graph.services_importing_tasks(tmp_path) == ["models_app/services.py:1 imports models_app.tasks"]
