"""The embedded default (SQLite, no row locks): concurrent annotators still never exceed a task's
overlap, and submits write their pairs (the Postgres-only single-statement writes run one by one)."""
import json
import os
import subprocess
import sys
from pathlib import Path


def test_concurrent_annotators_on_sqlite(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["RANKLOOP_VAR_DIR"] = str(tmp_path)
    script = Path(__file__).with_name("sqlite_workload.py")
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["errors"] == []
    assert result["over_annotated"] == 0 and result["counters_match"] and result["live_leases"] == 0
    assert result["annotations"] > 0 and result["tasks_with_pairs"] == result["tasks_annotated"]
    assert result["pairs"] == 3 * result["tasks_annotated"] and result["pair_votes_match"]
