"""Each annotator's figures for staff: gold accuracy with a Wilson interval, agreement with the
others (leave-one-out majority), skip rate and time on task; on the staff page and in the API."""
import re

from django.urls import reverse
from rest_framework.test import APIClient

from labeling import quality
from labeling.actions.annotations import submit_annotation
from labeling.actions.assignments import assign_next, skip_task
from labeling.queries import agreement_by_round
from tests.support.quality import answer, make_gold


def test_gold_accuracy_agreement_and_skips_per_annotator(client, admin_user, make_project, make_tasks, make_user):
    a, b, c, d = (make_user(f"ann_{x}") for x in "abcd")
    project = make_project(annotators=[a, b, c, d], overlap=4, gold_share=0.0, shuffle_positions=False)
    make_tasks(project, 4)
    # a, b and d always pick the first answer, c always the second: c disagrees with the others' majority.
    for user, choice in ((a, "a"), (b, "a"), (d, "a"), (c, "b")):
        for _ in range(4):
            assignment = assign_next(project, user)
            submit_annotation(assignment.pk, user, {"choice": choice, "time_on_task_ms": 9000})
    project.gold_share = 1.0
    project.save()
    make_gold(project, 5)
    for right in (True, True, True, True, False):
        answer(assign_next(project, a), a, right=right)
    skip_task(assign_next(project, b).pk, b)

    rows = {row["annotator"]: row for row in quality.annotator_quality(project)}
    assert rows["ann_a"]["gold_correct"] == 4 and rows["ann_a"]["gold_answered"] == 5
    assert rows["ann_a"]["gold_accuracy"] == 0.8
    assert 0.3 < rows["ann_a"]["gold_accuracy_ci_low"] < 0.8 < rows["ann_a"]["gold_accuracy_ci_high"] <= 1.0
    assert rows["ann_b"]["gold_accuracy"] is None
    assert rows["ann_a"]["agreement"] == 1.0 and rows["ann_c"]["agreement"] == 0.0
    assert rows["ann_c"]["agreement_pairs"] == 4
    assert rows["ann_b"]["skipped"] == 1 and rows["ann_b"]["skip_rate"] == 0.2
    assert rows["ann_c"]["median_time_ms"] == 9000

    client.force_login(admin_user)
    page = client.get(reverse("labeling:project", args=[project.slug])).content.decode()
    section = re.search(r'id="label-quality">(.*?)</section>', page, re.S).group(1)
    assert re.search(r"<td>ann_a</td>\s*<td class=\"num\">4 / 5</td>", section)
    assert "0.80 [" in section and "no gold answered" in section

    api = APIClient()
    api.force_authenticate(admin_user)
    body = api.get(f"/api/v1/projects/{project.slug}/quality/").json()
    assert {row["annotator"] for row in body["annotators"]} == {"ann_a", "ann_b", "ann_c", "ann_d"}
    api.force_authenticate(a)
    assert api.get(f"/api/v1/projects/{project.slug}/quality/").status_code in (403, 404)


def test_the_gold_check_scores_strict_pairs_only():
    assert quality.gold_agrees([[1], [2], [3]], [[1], [2, 3]])  # gold ties 2 and 3: not scored
    assert not quality.gold_agrees([[1, 2], [3]], [[1], [2], [3]])  # a tie where gold orders
    assert not quality.gold_agrees([[2], [1]], [[1], [2]])


def test_agreement_by_round(make_project, make_tasks, make_user):
    a, b = make_user("r_a"), make_user("r_b")
    project = make_project(annotators=[a, b], overlap=2, shuffle_positions=False)
    make_tasks(project, 2)
    for user in (a, b):
        for _ in range(2):
            assignment = assign_next(project, user)
            submit_annotation(assignment.pk, user, {"choice": "a"})
    (row,) = agreement_by_round(project)
    assert row["round"] is None and row["pairs"] == 2 and row["pairwise_agreement"] == 1.0
