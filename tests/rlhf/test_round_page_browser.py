"""The round page in a real Chromium: Chart.js (served locally) draws the metrics, and the
progress bar follows the run through htmx polling without a reload."""
import os
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections
from django.urls import reverse

from rlhf import services
from tests.support.browser import CHROMIUM

CHARTJS = Path(settings.BASE_DIR) / "node_modules" / "chart.js" / "dist" / "chart.umd.min.js"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium"),
    pytest.mark.skipif(not CHARTJS.exists(), reason="Chart.js is not installed (npm ci)"),
]
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def test_round_page_draws_charts_and_follows_progress(live_server, labeled_project, make_user, monkeypatch):
    from playwright.sync_api import sync_playwright

    monkeypatch.setattr(services, "enqueue_chain", lambda round: None)  # this test plays the worker
    make_user("boss", staff=True, password="boss-secret-pw")
    round = services.launch_round(labeled_project, user=None, algorithm="dpo")
    run = round.runs.get(kind="reward")
    services.start_run(run)
    for step, loss in enumerate([0.69, 0.6, 0.52], start=1):
        services.record_metrics(run.pk, step, {"loss": loss, "accuracy": step / 3})
    services.record_progress(run.pk, step=3, total=10)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        page.set_default_timeout(15000)
        page.goto(live_server.url + reverse("login"))
        page.fill("input[name=username]", "boss")
        page.fill("input[name=password]", "boss-secret-pw")
        page.press("input[name=password]", "Enter")
        page.wait_for_load_state()
        page.goto(live_server.url + reverse("rlhf:detail", args=[round.pk]))
        page.evaluate("window.sameDocument = true")
        page.wait_for_function(
            "() => window.Chart && Chart.getChart(document.querySelector('canvas[data-group=loss]'))")
        loss = page.evaluate("Chart.getChart(document.querySelector('canvas[data-group=loss]')).data.datasets"
                             ".map(d => [d.label, d.data.map(p => p.y)])")
        assert loss == [[f"reward #{run.pk} loss", [0.69, 0.6, 0.52]]]
        assert page.locator(".progress-line").inner_text().startswith("Training · Reward model step 3/10")
        # A DPO round logs no KL: its chart says so; an empty chart says it is empty, a full one nothing.
        assert "DPO logs no KL" in page.locator("figure[data-chart=kl] .chart-note").inner_text()
        assert page.locator("figure[data-chart=reward] .chart-empty").is_visible()
        assert not page.locator("figure[data-chart=loss] .chart-empty").is_visible()

        services.record_progress(run.pk, step=6, total=10)
        page.wait_for_function("() => document.querySelector('.progress-line').innerText.includes('step 6/10')")
        assert page.evaluate("window.sameDocument") is True
        assert page.locator("[role=progressbar]").get_attribute("aria-valuenow") == "20"

        # The header's badge follows the live state, without a reload.
        assert page.locator("#round-badge").inner_text() == "Training"
        services.transition(round, "evaluating")
        page.wait_for_function("() => document.querySelector('#round-badge').innerText === 'Evaluating'")
        assert page.evaluate("window.sameDocument") is True
        browser.close()


def test_launch_page_recounts_the_pairs_when_a_filter_changes(live_server, labeled_project, make_user):
    from playwright.sync_api import sync_playwright

    from tests.support.rlhf import add_prompts, annotate_all, hand_written_tasks

    hand_written_tasks(labeled_project, add_prompts(labeled_project, 2, start=100))
    annotate_all(labeled_project, labeled_project.annotator, tie=True)
    make_user("boss", staff=True, password="boss-secret-pw")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        page.set_default_timeout(15000)
        page.goto(live_server.url + reverse("login"))
        page.fill("input[name=username]", "boss")
        page.fill("input[name=password]", "boss-secret-pw")
        page.press("input[name=password]", "Enter")
        page.wait_for_load_state()
        page.goto(live_server.url + reverse("rlhf:project", args=[labeled_project.slug]))
        assert "(8 in all: 2 ties left out" in page.locator("#pair-count").inner_text()
        page.check("#id_include_ties")
        page.wait_for_function("() => !document.querySelector('#pair-count').innerText.includes('ties left out')")
        assert "(8 in all" in page.locator("#pair-count").inner_text()
        browser.close()
        connections.close_all()  # those the ORM opened while Playwright's loop was current
