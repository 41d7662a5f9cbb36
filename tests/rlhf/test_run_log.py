"""The run's log keeps its last lines whole (cut at a line boundary when trimmed), in the
database and on the round page."""
import re

from django.urls import reverse

from rlhf import services
from rlhf.models import Round, TrainingRun

LINE = re.compile(r"step \d+/500: loss=0\.\d{4}, accuracy=0\.\d{2}, learning_rate=1e-05")


def log_lines(n):
    return [f"step {i}/500: loss=0.{i:04d}, accuracy=0.{i % 100:02d}, learning_rate=1e-05\n" for i in range(n)]


def test_the_log_tail_is_trimmed_at_a_line_boundary(project_with_policy):
    round = Round.objects.create(project=project_with_policy, number=1, state=Round.State.TRAINING)
    run = TrainingRun.objects.create(round=round, kind="reward")
    lines = log_lines(500)
    for line in lines:
        services.append_log(run.pk, line)
    run.refresh_from_db()
    assert len(run.log_tail) <= services.LOG_TAIL_CHARS
    assert run.log_tail.endswith(lines[-1])
    assert all(LINE.fullmatch(line) for line in run.log_tail.splitlines()), run.log_tail[:120]
    assert len(run.log_tail) > services.LOG_TAIL_CHARS - len(lines[0])  # only the cut line is lost


def test_a_retry_note_keeps_whole_lines_too(project_with_policy):
    text = "".join(log_lines(500))
    kept = services.log_excerpt(text + "--- retried\n", services.LOG_TAIL_CHARS)
    assert kept.endswith("--- retried\n") and LINE.fullmatch(kept.splitlines()[0])


def test_the_round_page_shows_whole_lines(client, admin_user, project_with_policy):
    round = Round.objects.create(project=project_with_policy, number=1, state=Round.State.TRAINING)
    run = TrainingRun.objects.create(round=round, kind="reward", log_tail="".join(log_lines(90)))
    client.force_login(admin_user)
    html = client.get(reverse("rlhf:detail", args=[round.pk])).content.decode()
    shown = re.search(r'<pre class="log" tabindex="0">== Reward model #\d+ ==\n(.*?)</pre>', html, re.S).group(1)
    assert all(LINE.fullmatch(line) for line in shown.strip().splitlines())
    assert shown.strip().endswith(log_lines(90)[-1].strip()) and len(shown) < len(run.log_tail)
