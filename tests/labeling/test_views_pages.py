"""Who sees which page, and what the pages show."""
import pytest
from django.urls import reverse

from labeling.actions.annotations import submit_annotation
from labeling.actions.assignments import assign_next
from labeling.actions.memberships import remove_annotator
from labeling.actions.tasks import create_task
from labeling.models import Assignment, Candidate, Prompt

XSS_PROMPT = 'Hi <script>alert("prompt")</script> and <img src=x onerror=alert(1)>'
XSS_ANSWER = 'Sure <script>alert("answer")</script><img src=x onerror="alert(2)"> [click](javascript:alert(3))'


@pytest.fixture
def project(make_project, annotator):
    return make_project(annotators=[annotator], mode="ranking", candidates_per_prompt=3, overlap=1,
                        instructions="# Be *careful*\n\n<b>raw</b>")


def annotate_url(project):
    return reverse("labeling:annotate", args=[project.slug])


def test_anonymous_is_sent_to_login(client, project):
    for url in [reverse("labeling:home"), annotate_url(project), reverse("labeling:project", args=[project.slug])]:
        response = client.get(url)
        assert response.status_code == 302
        assert response.url.startswith(reverse("login"))
    response = client.post(reverse("labeling:submit", args=[project.slug, 1]))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_non_member_cannot_open_the_annotate_page(client, project, make_tasks, make_user):
    make_tasks(project, 1)
    client.force_login(make_user("stranger"))
    response = client.get(annotate_url(project))
    assert response.status_code == 403
    assert "not an annotator of this project" in response.content.decode()
    assert not Assignment.objects.exists()
    assert project.name not in client.get(reverse("labeling:home")).content.decode()


def test_removed_member_loses_access(client, project, annotator):
    remove_annotator(project, annotator)
    client.force_login(annotator)
    assert client.get(annotate_url(project)).status_code == 403


def test_annotator_cannot_open_the_staff_project_page(client, project, annotator):
    client.force_login(annotator)
    assert client.get(reverse("labeling:project", args=[project.slug])).status_code == 403


def test_home_lists_member_projects_with_progress(client, project, make_project, make_tasks, annotator):
    make_project(name="Not mine")
    make_tasks(project, 3)
    client.force_login(annotator)
    page = client.get(reverse("labeling:home")).content.decode()
    assert project.name in page and "Not mine" not in page
    assert annotate_url(project) in page
    assert f'href="{reverse("labeling:project", args=[project.slug])}"' not in page  # staff only


def test_staff_home_links_project_pages(client, project, admin_user):
    client.force_login(admin_user)
    page = client.get(reverse("labeling:home")).content.decode()
    assert reverse("labeling:project", args=[project.slug]) in page
    assert "/rounds/" in page and "/models/" in page and "/accounts/tokens/" in page


def test_annotate_page_shows_candidates_in_the_stored_order(client, project, make_tasks, annotator):
    make_tasks(project, 1)
    client.force_login(annotator)
    page = client.get(annotate_url(project)).content.decode()
    assignment = Assignment.objects.get(annotator=annotator)
    positions = [page.index(f'data-candidate="{cid}"') for cid in assignment.shown_order]
    assert positions == sorted(positions)
    assert f'data-order="{",".join(map(str, assignment.shown_order))}"' in page
    # Instructions are rendered markdown, raw HTML escaped.
    assert "<h1>Be <em>careful</em></h1>" in page and "&lt;b&gt;raw&lt;/b&gt;" in page
    # A reload hands back the same lease.
    client.get(annotate_url(project))
    assert Assignment.objects.filter(annotator=annotator).count() == 1


def test_html_in_prompts_and_candidates_arrives_escaped(client, project, annotator):
    prompt = Prompt.objects.create(project=project, messages=[
        {"role": "user", "content": XSS_PROMPT},
        {"role": "assistant", "content": "<script>alert('turn')</script>"},
        {"role": "user", "content": "Go on"},
    ])
    candidates = [Candidate.objects.create(prompt=prompt, text=XSS_ANSWER),
                  Candidate.objects.create(prompt=prompt, text="```html\n<script>x()</script>\n```"),
                  Candidate.objects.create(prompt=prompt, text="plain")]
    create_task(prompt, candidates)
    client.force_login(annotator)
    page = client.get(annotate_url(project)).content.decode()
    assert '&lt;script&gt;alert("prompt")&lt;/script&gt;' in page
    assert '&lt;script&gt;alert("answer")&lt;/script&gt;' in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;script&gt;x()&lt;/script&gt;" in page  # inside a code block
    for raw in ["<script>alert", "<img", 'href="javascript:', "<script>x()"]:
        assert raw not in page


def test_flagged_candidate_shows_a_warning(client, project, annotator):
    prompt = Prompt.objects.create(project=project, messages=[{"role": "user", "content": "Q"}])
    candidates = [Candidate.objects.create(prompt=prompt, text="bad", is_flagged=True,
                                           moderation={"flagged": True, "reason": "unsafe advice"}),
                  Candidate.objects.create(prompt=prompt, text="good"),
                  Candidate.objects.create(prompt=prompt, text="ok")]
    create_task(prompt, candidates)
    client.force_login(annotator)
    page = client.get(annotate_url(project)).content.decode()
    assert "The moderation filter flagged this answer: unsafe advice" in page


def test_all_done_panel_when_nothing_is_left(client, project, annotator):
    client.force_login(annotator)
    page = client.get(annotate_url(project)).content.decode()
    assert "All done" in page


def test_staff_project_page(client, make_project, make_tasks, admin_user, make_user, django_assert_max_num_queries):
    alice, bob = make_user("alice"), make_user("bob")
    project = make_project(name="Agree", annotators=[alice, bob], overlap=2)
    make_tasks(project, 6)
    for user in (alice, bob):
        for _ in range(6):
            a = assign_next(project, user)
            submit_annotation(a.pk, user, {"ranking": [[min(a.shown_order)], [max(a.shown_order)]],
                                                    "time_on_task_ms": 1500})
    client.force_login(admin_user)
    url = reverse("labeling:project", args=[project.slug])
    # no query per annotation or member (quality, review, agreement by round and sources add a few each)
    with django_assert_max_num_queries(24):
        response = client.get(url)
    page = response.content.decode()
    assert response.status_code == 200
    assert "12</b> of 12" in page  # annotations done of wanted
    assert "Pairwise agreement" in page and "1.00" in page
    assert "alice" in page and "bob" in page
    assert "1.5 s" in page
    assert f"/rounds/p/{project.slug}/" in page and f"/models/projects/{project.slug}/" in page


def test_an_answer_cut_at_the_token_limit_is_marked_for_the_annotator(client, project, annotator):
    prompt = Prompt.objects.create(project=project, messages=[{"role": "user", "content": "Q"}])
    cut = {"max_new_tokens": 128, "finish_reason": "length"}
    candidates = [Candidate.objects.create(prompt=prompt, text="It goes on and", decoding=cut),
                  Candidate.objects.create(prompt=prompt, text="Done.", decoding={**cut, "finish_reason": "stop"}),
                  Candidate.objects.create(prompt=prompt, text="Hand-written.")]
    create_task(prompt, candidates)
    client.force_login(annotator)
    page = client.get(annotate_url(project)).content.decode()
    assert page.count("cut at the token limit</span>") == 1
    marked = page[page.index(f'data-candidate="{candidates[0].pk}"'):]
    assert marked.index("cut at the token limit") < marked.index("It goes on and")


def test_rating_selects_have_labels_that_say_the_aspect_answer_and_scale(client, make_project, annotator, make_tasks):
    project = make_project(name="Rated", annotators=[annotator], candidates_per_prompt=2, overlap=1,
                           rating_aspects=["helpful", "factually_correct"], rating_scale=5, shuffle_positions=False)
    make_tasks(project, 1)
    client.force_login(annotator)
    page = client.get(annotate_url(project)).content.decode()
    assert 'aria-label="Helpful, answer A (1 = poor, 5 = excellent)"' in page
    assert 'aria-label="Factually correct, answer B (1 = poor, 5 = excellent)"' in page
    assert '<option value="1">1 (poor)</option>' in page and '<option value="5">5 (excellent)</option>' in page
    assert '<option value="">not rated</option>' in page


def test_recent_activity_shows_prompt_text_and_the_ranking_as_the_annotator_saw_it(client, make_project, annotator,
                                                                                    admin_user):
    project = make_project(name="Seen", annotators=[annotator], mode="ranking", candidates_per_prompt=3, overlap=1)
    prompt = Prompt.objects.create(project=project, messages=[
        {"role": "user", "content": "Why does **this** crash?\n\n```python\nitems[3]\n```"}])
    candidates = [Candidate.objects.create(prompt=prompt, text=f"Answer *number* {i}") for i in range(3)]
    create_task(prompt, candidates)
    assignment = assign_next(project, annotator)
    a, b, c = assignment.shown_order  # the page showed them as A, B, C
    submit_annotation(assignment.pk, annotator, {"ranking": [[c], [a, b]]})

    client.force_login(admin_user)
    page = client.get(reverse("labeling:project", args=[project.slug])).content.decode()
    activity = page[page.index("Recent activity"):]
    assert "<td>Why does this crash? items[3]</td>" in activity  # text, not markdown
    text_of = {cand.pk: cand.text.replace("*", "") for cand in candidates}
    assert (f'<abbr title="{text_of[c]}">C</abbr> &gt; <abbr title="{text_of[a]}">A</abbr> = '
            f'<abbr title="{text_of[b]}">B</abbr>') in activity
    assert f"#{c}" not in activity
