"""Seeding from existing preference data through the API: each TRL shape (standard,
conversational, implicit prompt as message lists or Anthropic transcripts, UltraFeedback
scores) becomes labelled pairs with the right winner and its source; prompts and answers are
matched; a re-import adds nothing."""
import gzip
import io

import pytest

from labeling.models import Candidate, ComparisonTask, PreferencePair, Prompt
from tests.support.api import jsonl, post

pytestmark = pytest.mark.django_db


def pairs_of(project):
    return [(p.prompt.messages, p.chosen.text, p.rejected.text, p.margin, p.source)
            for p in PreferencePair.objects.filter(project=project).select_related("prompt", "chosen", "rejected")]


def user(text):
    return {"role": "user", "content": text}


def assistant(text):
    return {"role": "assistant", "content": text}


def test_each_shape_becomes_a_labelled_pair_with_its_winner_and_source(admin_api, project):
    body = jsonl(
        {"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Lyon."},
        {"prompt": [user("Hi"), assistant("Hello!"), user("2+2?")], "chosen": [assistant("4")],
         "rejected": [assistant("5")]},
        {"id": "hh/1", "prompt": [user("Tea?")], "chosen": "Yes please.", "rejected": "No."},
        {"chosen": [user("Sky colour?"), assistant("Blue.")], "rejected": [user("Sky colour?"), assistant("Green.")]},
        {"chosen": "\n\nHuman: Best pet?\n\nAssistant: Depends.\n\nHuman: For a flat?\n\nAssistant: A cat.",
         "rejected": "\n\nHuman: Best pet?\n\nAssistant: Depends.\n\nHuman: For a flat?\n\nAssistant: A horse."},
        {"prompt": "Rate me", "chosen": [assistant("Good")], "rejected": [assistant("Bad")],
         "score_chosen": 8.5, "score_rejected": 3},
        {"prompt": "Margin?", "chosen": "Big", "rejected": "Small", "margin": 0.25},
        # UltraFeedback binarized: chosen and rejected repeat the prompt, and carry scores.
        {"prompt": "Haiku?", "prompt_id": "abc", "chosen": [user("Haiku?"), assistant("Old pond, a frog")],
         "rejected": [user("Haiku?"), assistant("No.")], "score_chosen": 9.0, "score_rejected": 2.0,
         "messages": [user("Haiku?"), assistant("Old pond, a frog")]},
        # An empty turn earlier in the history (HH-RLHF has one) is kept; only the answered turn must say something.
        {"prompt": [user("Hike?"), assistant(""), user("Well?")], "chosen": "Layers.", "rejected": "Shorts."},
    )
    response = post(admin_api, project, body)
    assert response.status_code == 201, response.content
    assert response.json() == {"source": "import:public", "pairs_created": 9, "pairs_skipped_existing": 0,
                               "duplicate_lines_skipped": 0, "prompts_created": 9, "prompts_matched": 0,
                               "candidates_created": 18}
    got = pairs_of(project)
    assert got == [
        ([user("Capital of France?")], "Paris.", "Lyon.", 1.0, "import:public"),
        ([user("Hi"), assistant("Hello!"), user("2+2?")], "4", "5", 1.0, "import:public"),
        ([user("Tea?")], "Yes please.", "No.", 1.0, "import:public"),
        ([user("Sky colour?")], "Blue.", "Green.", 1.0, "import:public"),
        ([user("Best pet?"), assistant("Depends."), user("For a flat?")], "A cat.", "A horse.", 1.0,
         "import:public"),
        ([user("Rate me")], "Good", "Bad", 5.5, "import:public"),
        ([user("Margin?")], "Big", "Small", 0.25, "import:public"),
        ([user("Haiku?")], "Old pond, a frog", "No.", 7.0, "import:public"),
        ([user("Hike?"), assistant(""), user("Well?")], "Layers.", "Shorts.", 1.0, "import:public"),
    ]
    pair = PreferencePair.objects.get(external_id="hh/1")
    # No annotator voted: the verdict is the file's, on no task, and it does not count as agreement.
    assert pair.task is None and (pair.votes_a, pair.votes_b, pair.is_tie, pair.agreement) == (0, 0, False, 1.0)
    assert pair.split == pair.prompt.split and not ComparisonTask.objects.filter(project=project).exists()
    assert set(Candidate.objects.filter(prompt__project=project).values_list("external_source", flat=True)) == {
        "import:public"}


def test_prompts_and_answers_are_matched_not_repeated(admin_api, project, make_tasks):
    labelled = make_tasks(project, 1)[0]  # "Question 0?" with "Answer 0.0" and "Answer 0.1"
    body = jsonl(
        {"prompt": "Question 0?", "chosen": "Answer 0.1", "rejected": "Imported answer"},
        {"prompt": [user("Question 0?")], "chosen": "Imported answer", "rejected": "Answer 0.0"},
        {"prompt": "New?", "chosen": "a", "rejected": "b"},
        {"prompt": "New?", "chosen": "b", "rejected": "c"},
    )
    report = post(admin_api, project, body).json()
    assert (report["prompts_matched"], report["prompts_created"], report["candidates_created"]) == (1, 1, 4)
    assert Prompt.objects.filter(project=project).count() == 2
    assert labelled.prompt.candidates.count() == 3
    first = PreferencePair.objects.filter(project=project).order_by("id").first()
    assert first.prompt_id == labelled.prompt_id and first.chosen.text == "Answer 0.1"


def test_a_reimport_adds_nothing(admin_api, project):
    body = jsonl({"id": 7, "prompt": "A?", "chosen": "x", "rejected": "y"},
                 {"prompt": "B?", "chosen": "x", "rejected": "y"},
                 {"prompt": "B?", "chosen": "x", "rejected": "y"})  # the same pair twice, no id: one pair
    first = post(admin_api, project, body).json()
    assert (first["pairs_created"], first["duplicate_lines_skipped"]) == (2, 1)
    again = post(admin_api, project, body)
    assert again.status_code == 201
    assert (again.json()["pairs_created"], again.json()["pairs_skipped_existing"]) == (0, 2)
    # Known by id (within the source) or by content: an edited line with the same id is still known.
    edited = post(admin_api, project, jsonl({"id": 7, "prompt": "A?", "chosen": "x!", "rejected": "y"})).json()
    assert edited["pairs_created"] == 0
    assert PreferencePair.objects.filter(project=project).count() == 2
    assert Prompt.objects.filter(project=project).count() == 2 and Candidate.objects.count() == 4


def test_a_multipart_gzip_upload_is_named_after_its_file(admin_api, project):
    upload = io.BytesIO(gzip.compress(jsonl({"prompt": "Q?", "chosen": "good", "rejected": "bad"},
                                            {"prompt": "R?", "chosen": "good", "rejected": "bad"})))
    upload.name = "ultrafeedback_binarized.jsonl.gz"
    response = admin_api.post(f"/api/v1/projects/{project.slug}/preferences/import/", {"file": upload, "limit": "1"},
                              format="multipart")
    assert response.status_code == 201, response.content
    assert response.json()["source"] == "import:ultrafeedback_binarized"
    assert list(PreferencePair.objects.values_list("source", "prompt__messages")) == [
        ("import:ultrafeedback_binarized", [user("Q?")])]


def test_pairs_api_shows_and_filters_the_source(admin_api, project):
    post(admin_api, project, jsonl({"id": "p1", "prompt": "Q?", "chosen": "a", "rejected": "b"}))
    rows = admin_api.get("/api/v1/pairs/", {"source": "import:public"}).json()["results"]
    assert [(r["source"], r["external_id"], r["task"]) for r in rows] == [("import:public", "p1", None)]
    assert admin_api.get("/api/v1/pairs/", {"source": "labels"}).json()["results"] == []


def test_imported_answers_are_moderated_like_every_other(admin_api, project):
    """A preference file's answers get the project's moderation verdict, as generated ones do."""
    project.moderation_blocklist = ["darn"]
    project.save()
    body = jsonl({"prompt": "Mood?", "chosen": "Fine, thanks.", "rejected": "Darn awful."})
    response = post(admin_api, project, body)
    assert response.status_code == 201, response.content
    flagged = {c.text: c for c in Candidate.objects.filter(prompt__project=project)}
    assert flagged["Darn awful."].is_flagged and not flagged["Fine, thanks."].is_flagged
    assert flagged["Darn awful."].moderation["filters"]["rules"]["reasons"] == ["blocklisted: darn"]
