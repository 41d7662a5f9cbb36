"""The label-quality pages in a real Chromium, under the site's CSP: an annotator writes a
demonstration with a preview and submits it; a reviewer records a final ranking by letter on the
review page; staff see the quality table and reinstate a paused annotator."""
import pytest
from django.urls import reverse

from labeling import importing, quality
from labeling.actions.annotations import submit_annotation
from labeling.actions.assignments import assign_next
from labeling.actions.memberships import add_annotator
from labeling.models import Annotation, Membership, PreferencePair
from tests.support.browser import CHROMIUM
from tests.support.csp import violations, watch

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium"),
]


def logged_in(page, live_server, client, user):
    client.force_login(user)
    page.context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value,
                               "url": live_server.url}])
    return page


def test_an_annotator_writes_a_demonstration_with_a_preview(live_server, browser_page, client, make_project,
                                                            annotator):
    project = make_project(name="Demos", annotators=[annotator], mode="demonstration")
    importing.import_prompts(project, b'{"prompt": "How do I boil an egg?"}', fmt="jsonl")
    page = logged_in(browser_page, live_server, client, annotator)
    console = watch(page)
    page.goto(live_server.url + reverse("labeling:annotate", args=[project.slug]))
    page.fill("textarea[name=ideal_answer]", "Boil it for **8 minutes**.")
    page.click("text=Preview")
    page.wait_for_selector("#demo-preview strong")
    assert page.inner_text("#demo-preview strong") == "8 minutes"
    page.click("button[type=submit]:has-text('Submit')")
    page.wait_for_selector("[data-testid=all-done]")
    assert Annotation.objects.get().ideal_answer == "Boil it for **8 minutes**."
    assert violations(page, console) == []


def test_a_reviewer_records_the_final_ranking_by_letter(live_server, browser_page, client, make_project, make_tasks,
                                                        make_user):
    annotators = [make_user(f"b{i}") for i in range(3)]
    reviewer = make_user("reviewer")
    project = make_project(name="Review", annotators=annotators, overlap=3, shuffle_positions=False,
                           review_agreement_below=0.9)
    add_annotator(project, reviewer, role="reviewer")
    (task,) = make_tasks(project, 1)
    first, second = task.candidates.order_by("id")
    for user, choice in zip(annotators, ("a", "a", "b")):
        submit_annotation(assign_next(project, user).pk, user, {"choice": choice})
    page = logged_in(browser_page, live_server, client, reviewer)
    console = watch(page)
    page.goto(live_server.url + reverse("labeling:review", args=[project.slug]))
    assert "Annotators disagree" in page.inner_text("main")
    page.check("input[value=adjudicate]")
    page.fill("input[name=ranking]", "B > A")
    page.click("text=Save and next")
    page.wait_for_selector("text=Nothing to review.")
    assert PreferencePair.objects.get(task=task).chosen_id == second.pk
    assert violations(page, console) == []


def test_staff_see_quality_and_reinstate_a_paused_annotator(live_server, browser_page, client, make_project,
                                                            annotator, admin_user):
    project = make_project(name="Gates", annotators=[annotator])
    quality.pause_annotator(project, annotator, reason="Paused by staff for a check.")
    page = logged_in(browser_page, live_server, client, admin_user)
    console = watch(page)
    page.goto(live_server.url + reverse("labeling:project", args=[project.slug]))
    page.click("button:has-text('Reinstate')")
    page.wait_for_selector("text=is reinstated")
    assert Membership.objects.get(project=project, user=annotator).paused_at is None
    assert page.locator("#label-quality").is_visible()
    assert violations(page, console) == []
