"""In a real Chromium the pages a person uses, with htmx and the API docs, work under the
Content-Security-Policy and report no violation."""
import os

import pytest
from django.urls import reverse

from labeling.models import Annotation
from tests.support.browser import CHROMIUM
from tests.support.csp import violations, watch

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium"),
]
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def log_in(page, live_server, username, password):
    page.goto(live_server.url + reverse("login"))
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.press("input[name=password]", "Enter")
    page.wait_for_url(live_server.url + reverse("labeling:home"))


def test_the_annotator_page_works_under_the_policy(live_server, browser_page, make_project, make_tasks, make_user):
    user = make_user("erin", password="erin-secret-pw")
    project = make_project(name="CSP pairs", annotators=[user], overlap=1)
    make_tasks(project, 2)
    page = browser_page
    console = watch(page)
    log_in(page, live_server, "erin", "erin-secret-pw")
    page.goto(live_server.url + reverse("labeling:annotate", args=[project.slug]))
    first = page.locator("#task").get_attribute("data-assignment")
    page.keyboard.press("1")
    page.keyboard.press("Enter")  # htmx swaps the next task in
    page.wait_for_selector(f"#task[data-assignment]:not([data-assignment='{first}'])")
    assert Annotation.objects.filter(annotator=user).count() == 1
    page.goto(live_server.url + reverse("labeling:home"))
    page.goto(live_server.url + "/accounts/tokens/")
    page.click("button[value=create]")
    page.wait_for_selector("#new-token")
    assert violations(page, console) == []


def test_staff_pages_and_progress_bars_work_under_the_policy(live_server, browser_page, make_project, make_tasks,
                                                             make_user):
    from labeling.actions.annotations import submit_annotation
    from labeling.actions.assignments import assign_next

    boss = make_user("frank", staff=True, password="frank-secret-pw")
    boss.is_superuser = True
    boss.save()
    project = make_project(name="CSP staff", annotators=[boss], overlap=1)
    make_tasks(project, 2)
    submit_annotation(assign_next(project, boss).pk, boss, {"choice": "a"})
    page = browser_page
    console = watch(page)
    log_in(page, live_server, "frank", "frank-secret-pw")
    page.goto(live_server.url + reverse("labeling:project", args=[project.slug]))
    bar = page.locator(".bar[role=progressbar] > span").first
    page.wait_for_function("el => el.style.width === '50.0%' || el.style.width === '50%'", arg=bar.element_handle())
    for url in ("/rounds/", f"/rounds/p/{project.slug}/", "/models/", f"/models/projects/{project.slug}/",
                "/models/playground/", "/admin/", "/admin/auth/user/", f"/admin/auth/user/{boss.pk}/change/",
                "/api/v1/projects/", f"/api/v1/projects/{project.slug}/"):  # the browsable API too
        page.goto(live_server.url + url)
        page.wait_for_load_state("load")
    assert violations(page, console) == []


def test_the_api_docs_render_under_their_policy(live_server, browser_page, make_user):
    make_user("gina", password="gina-secret-pw")
    page = browser_page
    console = watch(page)
    log_in(page, live_server, "gina", "gina-secret-pw")
    page.goto(live_server.url + "/api/v1/docs/")
    page.wait_for_selector(".swagger-ui .info .title:has-text('rankloop API')")
    page.wait_for_selector(".opblock-tag:has-text('projects')")
    page.goto(live_server.url + "/api/v1/redoc/")
    page.wait_for_selector("h1:has-text('rankloop API')")
    page.wait_for_selector("text=/api/v1/projects/")
    # Redoc's bundle always shows its logo from cdn.redoc.ly in the menu's footer; the policy
    # blocks that third-party request on purpose (the page shows the link text without it).
    redoc_logo = "cdn.redoc.ly/redoc/logo-mini.svg"
    assert [v for v in violations(page, console) if redoc_logo not in v] == []
