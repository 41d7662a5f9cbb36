"""The round page (Chart.js, htmx polling) works under the Content-Security-Policy in a real
Chromium and reports no violation."""
import os
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from rlhf import services
from tests.support.browser import CHROMIUM
from tests.support.csp import violations, watch

CHARTJS = Path(settings.BASE_DIR) / "node_modules" / "chart.js" / "dist" / "chart.umd.min.js"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium"),
    pytest.mark.skipif(not CHARTJS.exists(), reason="Chart.js is not installed (npm ci)"),
]
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def test_the_round_page_draws_its_charts_with_no_csp_violation(live_server, labeled_project, make_user, monkeypatch,
                                                              client):
    from playwright.sync_api import sync_playwright

    monkeypatch.setattr(services, "enqueue_chain", lambda round: None)  # this test plays the worker
    boss = make_user("csp-boss", staff=True)
    round = services.launch_round(labeled_project, user=None, algorithm="dpo")
    run = round.runs.get(kind="reward")
    services.start_run(run)
    for step, loss in enumerate([0.69, 0.6], start=1):
        services.record_metrics(run.pk, step, {"loss": loss})
    services.record_progress(run.pk, step=2, total=10)
    client.force_login(boss)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        page.set_default_timeout(20000)
        console = watch(page)
        page.context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value,
                                   "url": live_server.url}])
        page.goto(live_server.url + reverse("rlhf:detail", args=[round.pk]))
        page.wait_for_function(
            "() => window.Chart && Chart.getChart(document.querySelector('canvas[data-group=loss]'))")
        services.record_progress(run.pk, step=5, total=10)  # htmx polls the progress in
        page.wait_for_function("() => document.querySelector('.progress-line').innerText.includes('step 5/10')")
        assert page.locator(".progress-bar").evaluate("el => el.style.width") != ""
        found = violations(page, console)
        browser.close()
    assert found == []
