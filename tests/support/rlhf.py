"""Round helpers: prompts, hand-written tasks, ranking them all, waiting on another process, checking
a round's figures against what they are computed from, and a REAL Celery worker process (solo pool,
Redis broker) pointed at the pytest database."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from labeling.actions.annotations import submit_annotation
from labeling.actions.assignments import assign_next
from labeling.actions.tasks import create_task
from labeling.models import Candidate, Prompt

ROOT = Path(__file__).resolve().parents[2]

# Tiny settings: a step or two per stage, short answers.
TINY = {
    "reward": {"max_steps": 2, "per_device_train_batch_size": 2},
    "policy": {"max_steps": 2},
    "eval": {"prompts": 3, "samples_per_prompt": 2, "max_new_tokens": 8},
}
TINY_PPO = {**TINY, "policy": {"total_episodes": 4, "response_length": 8}}
# …with a reward model that learns the hand-written tasks' preference (helpful over refusal): a
# hundredth of a second a step on the tiny model.
TINY_LEARNED_REWARD = {**TINY, "reward": {"max_steps": 30, "per_device_train_batch_size": 2, "learning_rate": 1e-3}}


def wait_for(check, *, timeout=240, every=0.3, what="condition"):
    """Poll until check() is truthy (the worker runs in another process)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


class Worker:
    """`celery worker` as a subprocess we can kill -9, pointed at the test database."""

    def __init__(self, database_url, model_store, log_path):
        self.env = {
            **os.environ, "DATABASE_URL": database_url, "MODEL_STORE": str(model_store),
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "OMP_NUM_THREADS": "1", "RLHF_TORCH_THREADS": "1", "RLHF_HEARTBEAT_S": "1",
            # one-process runs start their script with python (accelerate's start-up costs ~7 s of
            # CPU a stage); tests/rlhf/test_checkpoints.py runs the launcher with accelerate
            "RLHF_SINGLE_PROCESS_RUNNER": "python",
            "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT),
        }
        self.log_path = log_path
        self.process = None

    def start(self):
        if self.process is not None and self.process.poll() is None:
            return self
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "rankloop", "worker", "-Q", "gpu,default", "--pool", "solo",
             "--concurrency", "1", "--loglevel", "INFO", "--without-gossip", "--without-mingle"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )
        wait_for(lambda: b"ready." in Path(self.log_path).read_bytes() and self._started_lines() > self.ready_seen,
                 timeout=120, what="the Celery worker to start")
        self.ready_seen = self._started_lines()
        return self

    ready_seen = 0

    def _started_lines(self):
        return Path(self.log_path).read_bytes().count(b"ready.")

    def kill(self):
        """kill -9: no cleanup, no goodbye to the broker or the database."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def database_url_of(connection) -> str:
    """The URL of pytest's test database, for another process (a worker, a fresh interpreter)."""
    base = settings.DATABASES["default"]
    user, host, port = base.get("USER") or "postgres", base.get("HOST") or "127.0.0.1", base.get("PORT") or 5432
    return f"postgres://{user}@{host}:{port}/{connection.settings_dict['NAME']}"


def add_prompts(project, n, *, start=0):
    return [Prompt.objects.create(project=project, messages=[{"role": "user", "content": f"Question {i} about code?"}])
            for i in range(start, start + n)]


def annotate_all(project, annotator, *, prefer=lambda texts: 0, tie=False, ideal_answer=""):
    """Rank every open task through the labeling actions; `prefer` picks the winner's index."""
    done = 0
    while (assignment := assign_next(project, annotator)) is not None:
        shown = assignment.shown_order
        if tie:
            payload = {"ranking": [shown]}
        else:
            texts = [Candidate.objects.get(pk=c).text for c in shown]
            best = shown[prefer(texts)]
            payload = {"ranking": [[best], [c for c in shown if c != best]], "ideal_answer": ideal_answer}
        submit_annotation(assignment.pk, annotator, payload)
        done += 1
    return done


def hold_out(project, n, *, reversed_preferences=False):
    """The first `n` prompts and their pairs held out, the others for training (instead of the split
    drawn from each prompt's uid); with `reversed_preferences` the held-out pairs prefer what the
    training pairs reject."""
    from django.db.models import F

    heldout = list(Prompt.objects.filter(project=project).order_by("pk").values_list("pk", flat=True)[:n])
    Prompt.objects.filter(project=project).update(split=Prompt.Split.TRAIN)
    Prompt.objects.filter(pk__in=heldout).update(split=Prompt.Split.HELDOUT)
    project.pairs.update(split=Prompt.Split.TRAIN)
    pairs = project.pairs.filter(prompt__in=heldout)
    pairs.update(split=Prompt.Split.HELDOUT)
    if reversed_preferences:
        pairs.update(chosen=F("rejected"), rejected=F("chosen"))
    return heldout


def hand_written_tasks(project, prompts):
    for i, prompt in enumerate(prompts):
        candidates = [Candidate.objects.create(prompt=prompt, text=text) for text in (
            f"Here is a helpful answer with code {i}.", f"Sorry, I cannot help {i}.")]
        create_task(prompt, candidates)


def _mean(values):
    return sum(values) / len(values)


def check_round_figures(round):
    """The round's headline figures are the evaluation's and agree with its per-prompt rows: the win
    rate is the mean of the prompts' win fractions (each in [0, 1]), the reward gain the new minus
    the old mean reward and the mean of the prompts' differences, KL the mean of the prompts' KL; the
    held-out accuracy is the share of the held-out pairs the reward model ranked right."""
    metrics, evaluation = round.metrics, round.metrics["evaluation"]
    figures, per_prompt = evaluation["figures"], evaluation["per_prompt"]
    assert per_prompt and len(per_prompt) == figures["eval_prompts"] == metrics["eval_prompts"]
    for name in ("win_rate", "reward_gain", "kl_to_old", "rm_accuracy_heldout"):
        assert metrics[name] == figures[name], name
    wins = [p["win_rate"] for p in per_prompt]
    assert all(0 <= w <= 1 for w in wins), wins
    assert metrics["win_rate"] == pytest.approx(_mean(wins))
    assert metrics["reward_gain"] == pytest.approx(metrics["mean_reward_new"] - metrics["mean_reward_old"])
    assert metrics["reward_gain"] == pytest.approx(_mean([p["reward_diff"] for p in per_prompt]))
    assert metrics["kl_to_old"] == pytest.approx(_mean([p["kl_new_old"] for p in per_prompt]))
    accuracy = evaluation["rm_accuracy"]
    assert accuracy["pairs"] == metrics["pairs_heldout"] == metrics["rm_pairs_heldout"]
    if accuracy["pairs"]:
        assert 0 <= accuracy["correct"] <= accuracy["pairs"]
        assert metrics["rm_accuracy_heldout"] == accuracy["correct"] / accuracy["pairs"]
    else:
        assert metrics["rm_accuracy_heldout"] is None


def check_reward_model_metrics(version, round):
    """A reward model version counts the round's pairs it trained on and was measured on (held-out
    ones longer than its max_length left out), and its held-out accuracy is the share it ranked
    right (None: not measured)."""
    from rlhf import datasets

    metrics = version.metrics
    train = datasets.preference_rows(round.project, round.data_filters, split=Prompt.Split.TRAIN)
    heldout = datasets.preference_rows(round.project, round.data_filters, split=Prompt.Split.HELDOUT)
    assert metrics["pairs_train"] == len(train) > 0
    assert metrics["pairs_heldout"] + metrics["heldout_pairs_skipped"] == len(heldout)
    if metrics["pairs_heldout"]:
        assert 0 <= metrics["heldout_correct"] <= metrics["pairs_heldout"]
        assert metrics["heldout_accuracy"] == metrics["heldout_correct"] / metrics["pairs_heldout"]
    else:
        assert metrics["heldout_accuracy"] is None
