"""What exports is exactly what trains: a round's training files hold the rows an export with
the same filters gives, split by prompt."""
import pytest

from labeling.exporting import export_rows
from labeling.models import Prompt
from labeling.pair_filters import PairFilters
from rlhf import datasets

pytestmark = pytest.mark.django_db


def training_rows(project, round_filters):
    return [row for split in Prompt.Split.values
            for row in datasets.preference_rows(project, round_filters, split=split)]


@pytest.mark.parametrize("round_filters, params", [
    ({}, {}),
    ({"sources": ["import:hh"]}, {"source": "import:hh"}),
    ({"sources": ["labels"], "min_agreement": 0.5}, {"source": "labels", "min_agreement": "0.5"}),
])
def test_it_trains_on_the_rows_the_export_gives(seeded, round_filters, params):
    round_filters = datasets.validate_filters(seeded, round_filters)
    exported = list(export_rows(seeded, "conversational", PairFilters.from_params(params)))
    assert exported
    by_id = lambda row: row["id"]  # noqa: E731
    assert sorted(training_rows(seeded, round_filters), key=by_id) == sorted(exported, key=by_id)
