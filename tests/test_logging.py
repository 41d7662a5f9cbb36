"""Logs: each Django log record is printed once (make demo runs with DEBUG on)."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = """
import logging, django
django.setup()
logging.getLogger("django.request").error("request failed here")
logging.getLogger("rankloop.anything").warning("an app line")
"""


def test_a_django_log_line_is_printed_once_under_debug(tmp_path):
    env = dict(os.environ, DEBUG="1", RANKLOOP_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="rankloop.settings")
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("request failed here") == 1
    assert done.stderr.count("an app line") == 1
