"""Production settings: `manage.py check --deploy` is clean when DEBUG is off."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_check_deploy_is_clean_with_debug_off(tmp_path):
    env = dict(os.environ, DEBUG="0", SECRET_KEY="k8#Zq-" * 12, ALLOWED_HOSTS="rankloop.example",
               RANKLOOP_VAR_DIR=str(tmp_path))
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # set by the browser tests for their own process only
    done = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout
