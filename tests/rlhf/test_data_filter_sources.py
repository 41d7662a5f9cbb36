"""A round can train on the pairs of some sources only: the annotators' "labels", an imported
file, or both; the launch checks the names and the page's count says what was left out."""
import pytest

from labeling.models import Prompt
from rlhf import datasets, services

pytestmark = pytest.mark.django_db


def texts(project, filters):
    rows = [r for split in Prompt.Split.values for r in datasets.preference_rows(project, filters, split=split)]
    return sorted(r["chosen"][0]["content"].split()[0] for r in rows)


def test_a_round_trains_on_the_sources_it_names(seeded):
    assert texts(seeded, {}) == ["A"] * 8 + ["Here"] * 6
    assert texts(seeded, datasets.validate_filters(seeded, {"sources": ["labels"]})) == ["Here"] * 6
    assert texts(seeded, datasets.validate_filters(seeded, {"sources": ["import:hh"]})) == ["A"] * 8
    assert len(texts(seeded, datasets.validate_filters(seeded, {"sources": ["labels", "import:hh"]}))) == 14
    round = services.launch_round(seeded, user=None, algorithm="dpo", data_filters={"sources": ["import:hh"]},
                                  enqueue=False)
    assert round.data_filters == {"sources": ["import:hh"]}
    counts = datasets.pair_breakdown(seeded, round.data_filters)
    assert (counts["used"], counts["other_sources"]) == (8, 6)
    assert "6 from other sources" in datasets.describe_breakdown(counts)


def test_unknown_or_malformed_sources_are_refused_by_name(seeded):
    with pytest.raises(services.RoundError, match=r"has no pairs from 'chat'; its sources are import:hh, labels"):
        services.launch_round(seeded, user=None, algorithm="dpo", data_filters={"sources": ["labels", "chat"]},
                              enqueue=False)
    for bad in ([1], [""], {"a": 1}):
        with pytest.raises(services.RoundError, match="sources must be a list"):
            datasets.validate_filters(seeded, {"sources": bad})
    assert not seeded.rounds.exists()
