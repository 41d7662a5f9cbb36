"""The launch page says how many pairs the round will train on and why the others will not,
counted by the filter the training uses (rlhf.datasets), again as the data filters change."""
import re

import pytest
from django.urls import reverse

from labeling.models import Prompt
from rlhf import datasets
from tests.support.rlhf import add_prompts, annotate_all, hand_written_tasks


@pytest.fixture
def project_with_ties(labeled_project):
    """Six ranked pairs (two on held-out prompts) and three ties."""
    aside = list(Prompt.objects.filter(project=labeled_project).order_by("id").values_list("pk", flat=True)[:2])
    Prompt.objects.filter(pk__in=aside).update(split=Prompt.Split.HELDOUT)
    labeled_project.pairs.update(split=Prompt.Split.TRAIN)
    labeled_project.pairs.filter(prompt_id__in=aside).update(split=Prompt.Split.HELDOUT)
    hand_written_tasks(labeled_project, add_prompts(labeled_project, 3, start=100))
    annotate_all(labeled_project, labeled_project.annotator, tie=True)
    return labeled_project


def count_text(html):
    return re.search(r'<p id="pair-count"[^>]*>\s*<strong>([^<]+)</strong>', html).group(1)


def test_the_launch_page_counts_the_pairs_that_will_train(admin_client, project_with_ties):
    project = project_with_ties
    train = len(datasets.preference_rows(project, {}, split=Prompt.Split.TRAIN))  # what training reads
    heldout = len(datasets.preference_rows(project, {}, split=Prompt.Split.HELDOUT))
    assert (train, heldout) == (4, 2)
    assert project.pairs.count() == 9
    html = admin_client.get(reverse("rlhf:project", args=[project.slug])).content.decode()
    assert count_text(html) == (f"{train} pair{'s' if train != 1 else ''} will train (9 in all: 3 ties left out; "
                                f"{heldout} on held-out prompts, kept to evaluate the reward model)")


def test_the_count_follows_the_filters(admin_client, project_with_ties):
    project = project_with_ties
    url = reverse("rlhf:pairs", args=[project.slug])
    with_ties = datasets.filtered_pairs(project, {"include_ties": True}).filter(split=Prompt.Split.TRAIN).count()
    text = admin_client.get(url, {"include_ties": "on"}).content.decode()
    assert f"<strong>{with_ties} pairs will train (9 in all" in text and "ties left out" not in text

    weak = project.pairs.filter(is_tie=False).order_by("id").first()
    project.pairs.filter(pk=weak.pk).update(agreement=0.5)
    text = admin_client.get(url, {"min_agreement": "0.8"}).content.decode()
    assert "3 ties left out; 1 below agreement 0.8" in text

    refused = admin_client.get(url, {"min_agreement": "2"})
    assert refused.status_code == 200 and b"min_agreement must be between 0 and 1" in refused.content


def test_too_little_data_is_said_before_launching(admin_client, project_with_policy):
    html = admin_client.get(reverse("rlhf:project", args=[project_with_policy.slug])).content.decode()
    assert count_text(html) == "0 pairs will train (0 in all)" and "no preference pairs yet" in html
