"""Demonstration projects: prompts without candidates, the annotator writes the ideal reply;
reviewers accept or edit it; the replies export as TRL's conversational SFT rows, which
SFTTrainer trains on unchanged."""
import json

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from labeling import exporting, importing, review
from labeling.actions.annotations import submit_annotation
from labeling.actions.assignments import assign_next
from labeling.errors import InvalidSubmission
from labeling.models import Annotation, ComparisonTask, ReviewItem
from labeling.pair_filters import PairFilters


@pytest.fixture
def demo_project(make_project, annotator):
    project = make_project("Demos", annotators=[annotator], mode="demonstration", review_share=1.0)
    lines = [{"prompt": "How do I boil an egg?"},
             {"prompt": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"},
                         {"role": "user", "content": "Name a prime."}]}]
    report = importing.import_prompts(project, "\n".join(json.dumps(line) for line in lines).encode(), fmt="jsonl")
    assert report.tasks_created == 2
    return project


def test_an_annotator_writes_replies_and_they_export_as_sft_rows(demo_project, annotator, admin_user):
    replies = ["Put it in boiling water for **8 minutes**.", "7 is prime."]
    for reply in replies:
        assignment = assign_next(demo_project, annotator)
        assert assignment.candidates_in_order == []
        submit_annotation(assignment.pk, annotator, {"ideal_answer": reply})
    assert assign_next(demo_project, annotator) is None
    assert not demo_project.pairs.exists()
    api = APIClient()
    api.force_authenticate(admin_user)
    response = api.get(f"/api/v1/projects/{demo_project.slug}/export/?format=sft")
    rows = [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]
    assert [row["messages"][-1] for row in rows] == [{"role": "assistant", "content": r} for r in replies]
    assert rows[1]["messages"][:3] == [{"role": "user", "content": "Hi"},
                                       {"role": "assistant", "content": "Hello! How can I help?"},
                                       {"role": "user", "content": "Name a prime."}]


@pytest.mark.parametrize("payload", [{"ideal_answer": "   "}, {"ideal_answer": "x\x00y"}, {"ideal_answer": 5},
                                     {"ideal_answer": "x" * 200_001}, {}])
def test_a_bad_demonstration_is_refused_and_nothing_is_written(demo_project, annotator, payload):
    assignment = assign_next(demo_project, annotator)
    with pytest.raises(InvalidSubmission) as refused:
        submit_annotation(assignment.pk, annotator, payload)
    assert "ideal_answer" in refused.value.errors
    assert not Annotation.objects.exists()
    assert ComparisonTask.objects.get(pk=assignment.task_id).annotations_done == 0


def test_a_demonstration_project_takes_prompts_only(demo_project):
    with pytest.raises(importing.ImportRejected) as refused:
        importing.import_prompts(demo_project, b'{"prompt": "q", "candidates": ["a", "b"]}', fmt="jsonl")
    assert "takes prompts only" in f"{refused.value.message} {refused.value.errors}"


def test_a_reviewer_edits_a_reply_and_the_export_has_the_edit(demo_project, annotator, admin_user, make_user):
    assignment = assign_next(demo_project, annotator)
    annotation = submit_annotation(assignment.pk, annotator, {"ideal_answer": "Boil it 3 minutes."})
    item = ReviewItem.objects.get(annotation=annotation)
    with pytest.raises(InvalidSubmission):
        review.decide(item.pk, admin_user, decision="adjudicate", ranking=[[1]])
    review.decide(item.pk, admin_user, decision="edit", text="Boil it 8 to 10 minutes for a hard yolk.")
    item.refresh_from_db()
    assert item.status == "edited" and item.original_text == "Boil it 3 minutes."
    rows = list(exporting.export_rows(demo_project, "sft", PairFilters()))
    assert rows[0]["messages"][-1]["content"] == "Boil it 8 to 10 minutes for a hard yolk."


def test_the_page_shows_an_editor_with_preview(client, demo_project, annotator):
    client.force_login(annotator)
    page = client.get(reverse("labeling:annotate", args=[demo_project.slug])).content.decode()
    assert "Write the assistant&#x27;s ideal reply" in page or "Write the assistant's ideal reply" in page
    assert 'name="ideal_answer"' in page
    preview = client.post(reverse("labeling:preview", args=[demo_project.slug]),
                          {"ideal_answer": "**bold** <script>alert(1)</script>"}).content.decode()
    assert "<strong>bold</strong>" in preview and "<script>" not in preview


@pytest.mark.slow
def test_sft_trainer_trains_on_the_export(demo_project, annotator, tiny_model_dir, tmp_path):
    import torch
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    for reply in ("Boil it for 8 minutes.", "7 is prime."):
        assignment = assign_next(demo_project, annotator)
        submit_annotation(assignment.pk, annotator, {"ideal_answer": reply})
    path = tmp_path / "sft.jsonl"
    path.write_bytes(b"".join(exporting.export_lines(demo_project, "sft", PairFilters())))
    torch.set_num_threads(1)
    dataset = load_dataset("json", data_files=str(path), split="train")
    trainer = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(tiny_model_dir),
                         processing_class=AutoTokenizer.from_pretrained(tiny_model_dir), train_dataset=dataset,
                         args=SFTConfig(output_dir=str(tmp_path / "sft"), max_steps=1, per_device_train_batch_size=2,
                                        bf16=False, activation_checkpointing=False, dataloader_pin_memory=False,
                                        report_to="none", save_strategy="no", disable_tqdm=True, use_cpu=True,
                                        max_length=128))
    trainer.train()
    assert trainer.state.global_step == 1
