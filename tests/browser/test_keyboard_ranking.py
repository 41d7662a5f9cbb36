"""An annotator ranks two tasks in a real Chromium with the keyboard alone."""
import os

import pytest
from django.urls import reverse

from labeling.models import Annotation, Assignment
from labeling.queries import annotator_progress
from tests.support.browser import CHROMIUM

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium"),
]
# Playwright's sync API runs an event loop in this thread; the ORM calls here are still sync.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def test_annotator_ranks_two_tasks_with_the_keyboard(live_server, browser_page, make_project, make_tasks, make_user):
    user = make_user("carol", password="carol-secret-pw")
    project = make_project(name="Rank three", annotators=[user], mode="ranking", candidates_per_prompt=3,
                           overlap=1, allow_ties=True, instructions="Rank **carefully**.")
    make_tasks(project, 2)
    page = browser_page

    page.goto(live_server.url + reverse("login"))
    page.keyboard.type("carol")  # the username field has focus
    page.keyboard.press("Tab")
    page.keyboard.type("carol-secret-pw")
    page.keyboard.press("Enter")
    page.wait_for_url(live_server.url + reverse("labeling:home"))

    page.goto(live_server.url + reverse("labeling:annotate", args=[project.slug]))
    page.evaluate("window.sameDocument = true")  # survives only if no full reload happens
    page.keyboard.press("?")
    assert page.locator("#instructions").is_visible()
    assert page.locator("#instructions strong", has_text="carefully").is_visible()
    page.keyboard.press("Escape")
    assert not page.locator("#instructions").is_visible()

    first_id = int(page.locator("#task").get_attribute("data-assignment"))
    for key in ["2", "1", "3"]:
        page.keyboard.press(key)
    assert page.locator("[data-ranking-summary]").inner_text() == "B  >  A  >  C"
    page.keyboard.press("Enter")
    page.wait_for_selector(f"#task[data-assignment]:not([data-assignment='{first_id}'])")
    assert page.locator("[data-testid=done-today]").inner_text() == "1"

    second_id = int(page.locator("#task").get_attribute("data-assignment"))
    for key in ["1", "Backspace", "3", "=", "1", "2"]:  # a slip, undone; then C = A > B
        page.keyboard.press(key)
    assert page.locator("[data-ranking-summary]").inner_text() == "C = A  >  B"
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-testid=all-done]")
    assert page.evaluate("window.sameDocument") is True

    first, second = (Assignment.objects.get(pk=pk) for pk in (first_id, second_id))
    o1, o2 = first.shown_order, second.shown_order
    annotations = list(Annotation.objects.filter(annotator=user).order_by("id"))
    assert [a.assignment_id for a in annotations] == [first_id, second_id]
    assert annotations[0].ranking == [[o1[1]], [o1[0]], [o1[2]]]
    assert annotations[1].ranking == [[o2[2], o2[0]], [o2[1]]]
    assert all(a.time_on_task_ms > 0 for a in annotations)
    assert Annotation.objects.count() == 2
    assert annotator_progress(project, user)["left"] == 0


def test_a_refused_submit_shows_its_message_and_keeps_the_task(live_server, browser_page, client, make_project,
                                                               make_tasks, make_user, settings):
    settings.DEBUG = True  # as in `make demo`, where django-htmx's debug handler is on the page too
    user = make_user("dave", password="dave-secret-pw")
    project = make_project(name="Refusals", annotators=[user], mode="ranking", candidates_per_prompt=3, overlap=1)
    make_tasks(project, 1)
    client.force_login(user)
    page = browser_page
    page.context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value,
                               "url": live_server.url}])
    page.goto(live_server.url + reverse("labeling:annotate", args=[project.slug]))
    page.evaluate("window.sameDocument = true")
    task_id = page.locator("#task").get_attribute("data-assignment")
    page.keyboard.press("1")
    page.click("[data-submit]")  # the mouse bypasses the page's own completeness check
    page.wait_for_selector("#task-error:not(:empty)")
    assert "Candidates not ranked" in page.locator("#task-error").inner_text()
    assert page.locator("#task").get_attribute("data-assignment") == task_id
    assert page.evaluate("window.sameDocument") is True
    assert not Annotation.objects.exists()
