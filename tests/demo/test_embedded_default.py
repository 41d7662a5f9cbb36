"""make demo's first steps on the embedded default (SQLite, filesystem broker), as a fresh clone
runs them: migrate, then load_demo --generate, which queues the model's answers and returns."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_load_demo_on_the_embedded_default_queues_two_jobs_and_says_so_plainly(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}}
    env.update(RANKLOOP_VAR_DIR=str(tmp_path), MODEL_STORE=str(tmp_path / "models"))
    for command in (["migrate", "--noinput"], ["load_demo", "--generate"]):
        done = subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout + done.stderr
    assert "Demo loaded:" in out and out.count("in the background") == 2
    assert "No hostname was supplied" not in out  # kombu's warning for a broker URL without a host
    assert "takes a minute" not in out
    assert len(list((tmp_path / "broker" / "in").iterdir())) == 2  # the two jobs wait for the worker
    assert not (tmp_path / "models").exists()  # nothing converted in this process
