"""Imported pairs are told apart from the annotators' labels in every export row, and the export
filters by source (one or several); the raw rows (annotations) are "labels"."""
import io

import orjson
import pytest
from django.core.management import call_command

from labeling import preference_import
from labeling.models import PreferencePair
from tests.support.api import jsonl, rank_all, read_export

pytestmark = pytest.mark.django_db


@pytest.fixture
def mixed(make_project, make_tasks, annotator):
    """Two labelled pairs, two from import:hh and one from import:uf."""
    project = make_project("Mixed", annotators=[annotator])
    make_tasks(project, 2)
    rank_all(project, annotator)
    preference_import.import_preferences(project, jsonl(
        {"prompt": "H1?", "chosen": "a", "rejected": "b"}, {"prompt": "H2?", "chosen": "a", "rejected": "b"}),
        source="hh")
    preference_import.import_preferences(project, jsonl({"prompt": "U1?", "chosen": "a", "rejected": "b"}),
                                         source="uf")
    return project


def sources(rows):
    return sorted(r["source"] for r in rows)


def test_every_row_says_its_source_and_the_export_filters_by_it(admin_api, mixed):
    _, rows = read_export(admin_api, mixed)
    assert sources(rows) == ["import:hh", "import:hh", "import:uf", "labels", "labels"]
    assert [r["chosen"] for r in rows if r["source"] == "import:hh"] == ["a", "a"]
    assert sources(read_export(admin_api, mixed, "?source=labels")[1]) == ["labels", "labels"]
    both = read_export(admin_api, mixed, "?format=conversational&source=labels,import:uf")[1]
    assert sources(both) == ["import:uf", "labels", "labels"]
    repeated = read_export(admin_api, mixed, "?source=import:hh&source=import:uf")[1]
    assert sources(repeated) == ["import:hh", "import:hh", "import:uf"]
    assert read_export(admin_api, mixed, "?source=chat")[1] == []
    raw = read_export(admin_api, mixed, "?format=raw")[1]
    assert len(raw) == 2 and {r["source"] for r in raw} == {"labels"}
    assert read_export(admin_api, mixed, "?format=raw&source=import:hh")[1] == []
    assert admin_api.get(f"/api/v1/projects/{mixed.slug}/export/?source=" + "x" * 121).status_code == 400


def test_the_command_filters_by_source_too(mixed, tmp_path):
    out = tmp_path / "hh.jsonl"
    call_command("export_preferences", "--project", mixed.slug, "--source", "import:hh", "--source", "import:uf",
                 "--output", str(out), stdout=io.StringIO())
    rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert sources(rows) == ["import:hh", "import:hh", "import:uf"]
    assert len(rows) == PreferencePair.objects.filter(project=mixed).exclude(source="labels").count()
