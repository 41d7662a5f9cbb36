"""Round helpers: prompts, hand-written tasks, ranking them all, waiting on another process, and
a REAL Celery worker process (solo pool, Redis broker) pointed at the pytest database."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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


def hand_written_tasks(project, prompts):
    for i, prompt in enumerate(prompts):
        candidates = [Candidate.objects.create(prompt=prompt, text=text) for text in (
            f"Here is a helpful answer with code {i}.", f"Sorry, I cannot help {i}.")]
        create_task(prompt, candidates)
