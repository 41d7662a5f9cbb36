"""The web process never loads the training stack: launching a round, its pages and the rounds
API answer without importing torch or TRL (the first launch once took 16 s doing that)."""
import json
import os
import subprocess
import sys

import pytest

from tests.support.rlhf import ROOT, database_url_of

SCRIPT = r"""
import json, sys, time
import django
django.setup()
from django.contrib.auth import get_user_model
from django.test import Client
from rlhf.models import Round

admin = get_user_model().objects.get(username="admin")
client = Client()
client.force_login(admin)
slug = sys.argv[1]
timings, statuses = {}, {}

def call(name, method, url, **kwargs):
    began = time.perf_counter()
    response = getattr(client, method)(url, **kwargs)
    timings[name] = round(time.perf_counter() - began, 3)
    statuses[name] = response.status_code
    return response

call("launch page", "get", f"/rounds/p/{slug}/")
call("launch (form)", "post", f"/rounds/p/{slug}/", data={"algorithm": "dpo",
     "hyperparameters": '{"policy": {"max_steps": 2, "learning_rate": 1e-6}}'})
first = Round.objects.get(project__slug=slug, number=1)
call("round page", "get", f"/rounds/{first.pk}/")
call("progress fragment", "get", f"/rounds/{first.pk}/progress/", HTTP_HX_REQUEST="true")
call("metrics", "get", f"/rounds/{first.pk}/metrics.json")
call("round list", "get", "/rounds/")
call("cancel", "post", f"/rounds/{first.pk}/cancel/")
call("launch (API)", "post", "/api/v1/rounds/", data={"project": slug, "algorithm": "grpo",
     "hyperparameters": {"policy": {"num_generations": 2}}}, content_type="application/json")
call("round (API)", "get", f"/api/v1/rounds/?project={slug}")
heavy = ("torch", "trl", "transformers", "peft", "datasets")
print(json.dumps({"timings": timings, "statuses": statuses, "loaded": sorted(m for m in heavy if m in sys.modules)}))
"""


@pytest.mark.slow
def test_launching_and_watching_a_round_never_imports_torch(labeled_project, admin_user, transactional_db):
    from django.db import connection

    env = {**os.environ, "DATABASE_URL": database_url_of(connection), "DJANGO_SETTINGS_MODULE": "rankloop.settings",
           "CELERY_BROKER_URL": "memory://",  # the chain is sent (and goes nowhere): no worker here
           "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", SCRIPT, labeled_project.slug], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    print(report)  # the timings, for the record (pytest -s)
    assert report["statuses"] == {"launch page": 200, "launch (form)": 302, "round page": 200,
                                  "progress fragment": 200, "metrics": 200, "round list": 200, "cancel": 302,
                                  "launch (API)": 201, "round (API)": 200}
    assert "torch" not in report["loaded"] and "trl" not in report["loaded"]
