"""generate_candidates: K candidates per prompt become comparison tasks; idempotent re-runs,
moderation verdicts, long prompts, and jobs that keep their progress and errors."""
import pytest

from labeling.actions.assignments import assign_next
from labeling.models import Candidate, ComparisonTask
from models_app import services
from models_app.decoding import DecodingConfigError
from models_app.models import GenerationJob
from models_app.services import GenerationError

FAST = {"max_new_tokens": 8, "seed": 5}


@pytest.fixture
def project(make_project, annotator, tiny_policy):
    project = make_project(annotators=[annotator], mode="ranking", candidates_per_prompt=3, decoding_config=FAST)
    services.deploy(project, tiny_policy)
    return project


def test_candidates_record_version_decoding_tokens_and_latency(project, make_prompts, tiny_policy):
    prompts = make_prompts(project, ["Explain the reward", "Write python code", "Hi"])
    tasks = services.generate_candidates(project, prompts)

    assert [t.prompt for t in tasks] == prompts
    for task in tasks:
        candidates = list(task.candidates.all())
        assert len(candidates) == 3
        assert len({c.text for c in candidates}) > 1  # sampled, so K different answers
        for index, c in enumerate(candidates):
            assert c.model_version == tiny_policy
            assert c.decoding["strategy"] == "sample" and c.decoding["max_new_tokens"] == 8
            assert c.decoding["seed"] == 5 and c.decoding["k"] == 3 and c.decoding["index"] == index
            assert c.prompt_tokens > 0 and 1 <= c.completion_tokens <= 8 and c.latency_ms > 0
            assert c.moderation["flagged"] is False and c.moderation["filters"]["rules"]["reasons"] == []


def test_rerunning_skips_prompts_already_done_for_that_version_and_round(project, make_prompts):
    prompts = make_prompts(project, ["One", "Two"])
    services.generate_candidates(project, prompts[:1])
    again = services.generate_candidates(project, prompts)
    assert [t.prompt for t in again] == prompts[1:]
    assert services.generate_candidates(project, prompts) == []
    assert ComparisonTask.objects.filter(project=project).count() == 2
    assert Candidate.objects.filter(prompt__project=project).count() == 6


def test_bad_requests_are_refused_before_anything_is_written(project, make_prompts, make_project):
    [prompt] = make_prompts(project, ["One"])
    with pytest.raises(DecodingConfigError, match="top_p"):
        services.generate_candidates(project, [prompt], decoding={"top_p": 2})
    with pytest.raises(DecodingConfigError, match="greedy decoding writes one answer"):
        services.generate_candidates(project, [prompt], decoding={"strategy": "greedy"})
    with pytest.raises(DecodingConfigError, match="model's context"):
        services.generate_candidates(project, [prompt], decoding={"max_new_tokens": 4000})
    other = make_project(name="Other")
    with pytest.raises(GenerationError, match="No policy is deployed"):
        services.generate_candidates(other, [])
    with pytest.raises(GenerationError, match="not in project"):
        services.generate_candidates(project, [prompt.pk, 999999])
    assert not Candidate.objects.exists()


@pytest.mark.parametrize("policy", ["hide", "warn"])
def test_moderation_verdicts_are_stored_and_the_project_hides_or_warns(
    project, make_prompts, annotator, settings, policy
):
    from labeling.moderation import Verdict, register_filter

    calls = []

    @register_filter("first-answer")  # a pluggable filter: flags the first answer it sees
    class FirstAnswer:
        def check(self, project, text):
            calls.append(text)
            return Verdict(flagged=len(calls) == 1, reasons=["first"] if len(calls) == 1 else [], score=0.9)

    settings.MODERATION_FILTERS = ["rules", "first-answer"]
    services.update_generation_settings(project, flagged_candidates=policy)
    [prompt] = make_prompts(project, ["Hi"])
    [task] = services.generate_candidates(project, [prompt])
    first, *rest = task.candidates.all()
    assert first.is_flagged and first.moderation["filters"]["first-answer"] == {
        "flagged": True, "reasons": ["first"], "score": 0.9
    }
    assert first.moderation["filters"]["rules"]["flagged"] is False
    assert not any(c.is_flagged for c in rest)
    shown = assign_next(project, annotator).shown_order
    if policy == "hide":
        assert sorted(shown) == sorted(c.pk for c in rest)
    else:
        assert first.pk in shown and len(shown) == 3


def test_rule_filter_matches_whole_words_any_case(project, make_prompts):
    from labeling.moderation import moderate

    services.update_generation_settings(project, blocklist=["darn", "bad word"], patterns=[r"\d{3}-\d{4}"])
    project.refresh_from_db()
    assert moderate(project, "Well DARN it")["flagged"] is True
    assert moderate(project, "darned")["flagged"] is False
    assert moderate(project, "a Bad Word here")["filters"]["rules"]["reasons"] == ["blocklisted: bad word"]
    assert moderate(project, "call 555-1234")["flagged"] is True


def test_invalid_moderation_pattern_is_refused(project):
    with pytest.raises(services.ModerationConfigError, match="not a valid regular expression"):
        services.update_generation_settings(project, patterns=["(unclosed"])
    project.refresh_from_db()
    assert project.moderation_patterns == []


def test_long_prompts_truncated_with_a_note_or_refused_per_project(project, make_prompts):
    long_text = "the answer is " * 300
    [long_prompt, short] = make_prompts(project, [long_text, "Hi"])
    [task, _] = services.generate_candidates(project, [long_prompt, short])
    assert all("truncated from the left" in c.generation_note for c in task.candidates.all())

    services.update_generation_settings(project, long_prompts="refuse")
    [again] = make_prompts(project, [long_text])
    job = GenerationJob.objects.create(project=project, prompt_ids=[again.pk], total=1)
    assert services.generate_candidates(project, [again], job=job) == []
    job.refresh_from_db()
    assert job.done == 1 and job.tasks_created == 0
    assert job.refused[0]["prompt"] == again.pk and "over the limit" in job.refused[0]["reason"]


def test_a_failing_job_keeps_a_clear_error_and_what_it_finished(project, make_prompts, tiny_policy, tmp_path):
    prompts = make_prompts(project, ["One", "Two"])
    job = GenerationJob.objects.create(project=project, prompt_ids=[p.pk for p in prompts], model_version=tiny_policy)
    tiny_policy.artifact_dir = str(tmp_path / "deleted")
    tiny_policy.save()
    job = services.run_generation_job(job.pk)
    assert job.status == "failed" and "deleted" in job.error and job.finished_at
    assert not ComparisonTask.objects.exists()
