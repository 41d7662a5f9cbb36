"""Real data: the OpenAssistant rankings (K = 3..9) import through the API as ranking tasks,
are ranked as the volunteers ranked them, and export back as exactly the pairs in the data
folder (the K >= 3 groups; the pairs file also has K = 2 groups the rankings file leaves out)."""
import gzip
from collections import Counter

import orjson
import pytest

from labeling.actions.annotations import submit_annotation
from labeling.actions.assignments import assign_next
from labeling.models import ComparisonTask

pytestmark = pytest.mark.django_db


def read_jsonl_gz(path):
    with gzip.open(path, "rb") as handle:
        return [orjson.loads(line) for line in handle if line.strip()]


def test_oasst_rankings_round_trip(shared_data, admin_api, make_project, annotator):
    rankings = read_jsonl_gz(shared_data / "oasst_en100_rankings.jsonl.gz")
    expected_pairs = [p for p in read_jsonl_gz(shared_data / "oasst_en100_pairs.jsonl.gz") if p["k"] >= 3]
    project = make_project("OASST", annotators=[annotator], mode="ranking", candidates_per_prompt=9,
                           allow_ties=False)

    body = b"\n".join(orjson.dumps({
        "prompt": r["prompt"], "external_id": r["id"], "source": "oasst",
        "candidates": [{"text": text, "external_id": rid, "source": "oasst"}
                       for text, rid in zip(r["responses"], r["response_ids"])],
    }) for r in rankings)
    response = admin_api.post(f"/api/v1/projects/{project.slug}/import/", data=body,
                              content_type="application/x-ndjson")
    assert response.status_code == 201, response.content
    assert response.json()["tasks_created"] == len(rankings) == 151
    sizes = Counter(t.candidates.count() for t in ComparisonTask.objects.filter(project=project))
    assert sizes == Counter(r["k"] for r in rankings)

    # The volunteers' rankings, submitted through the services as an annotator would.
    by_prompt = {r["id"]: r for r in rankings}
    while (assignment := assign_next(project, annotator)) is not None:
        ranking = by_prompt[assignment.task.prompt.external_id]
        candidate_of = dict(assignment.task.candidates.values_list("external_id", "id"))
        tiers = [[candidate_of[ranking["response_ids"][i]]] for i in ranking["ranking"]]
        submit_annotation(assignment.pk, annotator, {"ranking": tiers})

    exported = admin_api.get(f"/api/v1/projects/{project.slug}/export/?format=conversational")
    rows = [orjson.loads(line) for line in b"".join(exported.streaming_content).splitlines()]

    def key(prompt, chosen, rejected):
        return orjson.dumps(prompt), chosen, rejected

    got = Counter(key(r["prompt"], r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in rows)
    want = Counter(key(p["prompt"], p["chosen"], p["rejected"]) for p in expected_pairs)
    assert len(rows) == 676 and got == want
