"""Streamed preference export: formats, filters, stable ids, pseudonymised raw rows, the
management command."""
import io

import orjson
import pytest
from django.core.management import call_command

from labeling.formats import pair_id
from labeling.models import PreferencePair
from labeling.pair_filters import PairFilters
from tests.support.api import rank_all, read_export

pytestmark = pytest.mark.django_db


@pytest.fixture
def ranked(make_project, make_tasks, annotator):
    project = make_project("Ranked", annotators=[annotator], mode="ranking", candidates_per_prompt=3,
                           heldout_percent=50)
    make_tasks(project, 4)
    rank_all(project, annotator, payload_extra={"rationale": "first is best", "time_on_task_ms": 1234})
    return project


def test_standard_export_streams_trl_rows_with_a_file_name(admin_api, ranked):
    response, rows = read_export(admin_api, ranked)
    assert response["Content-Type"] == "application/x-ndjson"
    assert response["Content-Disposition"].startswith('attachment; filename="ranked-preferences-standard-')
    pairs = PreferencePair.objects.filter(project=ranked).order_by("id")
    assert len(rows) == pairs.count() == 4 * 3
    first, pair = rows[0], pairs[0]
    assert first == {"id": pair_id(pair.pk), "prompt": pair.prompt.messages[0]["content"],
                     "chosen": pair.chosen.text, "rejected": pair.rejected.text, "margin": 1.0, "source": "labels"}
    # The lower id was ranked first, so it is always chosen.
    assert all(r["chosen"] < r["rejected"] for r in rows)


def test_conversational_export_and_stable_ids(admin_api, ranked):
    _, standard = read_export(admin_api, ranked)
    _, rows = read_export(admin_api, ranked, "?format=conversational")
    assert [r["id"] for r in rows] == [r["id"] for r in standard]
    assert rows[0]["prompt"][0]["role"] == "user"
    assert rows[0]["chosen"] == [{"role": "assistant", "content": standard[0]["chosen"]}]
    _, again = read_export(admin_api, ranked, "?format=conversational")
    assert again == rows


def test_filters_split_ties_gold_agreement_rounds(admin_api, ranked, make_tasks, make_user):
    _, everything = read_export(admin_api, ranked)
    _, train = read_export(admin_api, ranked, "?split=train")
    _, heldout = read_export(admin_api, ranked, "?split=heldout")
    assert len(train) + len(heldout) == len(everything)
    assert {r["id"] for r in train}.isdisjoint({r["id"] for r in heldout})
    # A tie: a second annotator ranks every task all-equal on a fresh project.
    _, rows = read_export(admin_api, ranked, "?min_agreement=1.0")
    assert len(rows) == len(everything)
    _, rows = read_export(admin_api, ranked, "?rounds=7")
    assert rows == []
    PreferencePair.objects.filter(project=ranked, pk=PreferencePair.objects.filter(project=ranked).first().pk).update(
        is_tie=True)
    _, no_ties = read_export(admin_api, ranked)
    _, with_ties = read_export(admin_api, ranked, "?ties=include")
    assert len(no_ties) == len(everything) - 1 and len(with_ties) == len(everything)
    PreferencePair.objects.filter(project=ranked).update(is_gold=True)
    assert read_export(admin_api, ranked)[1] == []
    assert len(read_export(admin_api, ranked, "?gold=include&ties=include")[1]) == len(everything)


def test_bad_filters_are_400(admin_api, ranked):
    for query in ("?format=xml", "?min_agreement=2", "?split=test", "?rounds=a,b", "?ties=maybe"):
        response = admin_api.get(f"/api/v1/projects/{ranked.slug}/export/{query}")
        assert response.status_code == 400, query
        assert "detail" in response.json()


def test_raw_export_has_every_ranking_with_pseudonymous_annotators(admin_api, ranked, annotator):
    _, rows = read_export(admin_api, ranked, "?format=raw")
    assert len(rows) == 4
    row = rows[0]
    assert row["annotator"].startswith("annotator-") and f"\"{annotator.username}\"" not in orjson.dumps(row).decode()
    assert len({r["annotator"] for r in rows}) == 1
    assert row["rationale"] == "first is best" and row["time_on_task_ms"] == 1234
    assert sorted(c for tier in row["ranking"] for c in tier) == sorted(c["id"] for c in row["candidates"])
    assert row["candidates"][0]["text"].startswith("Answer ")
    assert {"ratings", "flags", "created_at", "split", "is_gold", "round", "shown_order"} <= row.keys()


def test_export_is_paged_by_keyset(ranked):
    from labeling import exporting

    rows = list(exporting.export_rows(ranked, "standard", PairFilters(), page_size=5))
    assert [r["id"] for r in rows] == [pair_id(p) for p in
                                       PreferencePair.objects.filter(project=ranked).order_by("id")
                                       .values_list("id", flat=True)]


def test_export_command_writes_the_same_rows(admin_api, ranked, tmp_path):
    _, rows = read_export(admin_api, ranked, "?format=conversational&split=train")
    out = tmp_path / "prefs.jsonl"
    call_command("export_preferences", "--project", ranked.slug, "--format", "conversational", "--split", "train",
                 "--output", str(out), stdout=io.StringIO())
    assert [orjson.loads(line) for line in out.read_bytes().splitlines()] == rows


@pytest.mark.parametrize("fmt", ["standard", "conversational", "raw"])
def test_streamed_bytes_are_the_rows_encoded(ranked, fmt):
    """The byte-splicing fast path writes exactly orjson's encoding of the format's rows."""
    from labeling import exporting

    filters = PairFilters()
    streamed = b"".join(exporting.export_lines(ranked, fmt, filters, page_size=4))
    assert streamed == b"".join(orjson.dumps(r) + b"\n" for r in exporting.export_rows(ranked, fmt, filters))
