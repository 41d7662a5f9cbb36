"""Preference import benchmark: the shared HH-RLHF pairs (6,267, gzip; a synthetic file of the
same size when the shared data is absent) POSTed to the HTTP API under gunicorn (production
settings, Postgres, loopback) as labelled pairs; then the same file again (adds nothing), and
three imports of a fresh file at once (one writes, the others wait and skip; never a 500).

    .venv/bin/python bench/preference_import.py [--data FILE] [--port 8208]

Last line: one JSON object {"pairs", "pairs_per_s", "reimport_s", "concurrent_statuses"}."""
from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import threading
import time
from pathlib import Path

import orjson
from support.server import ROOT, Gunicorn, production_env, recreate_postgres_database, setup_django

SHARED_DATA = Path(os.environ.get("RANKLOOP_SHARED_DATA", ROOT.parent / "shared" / "data"))


def synthetic_file(n: int) -> bytes:
    rows = [{"id": f"syn-{i}", "prompt": [{"role": "user", "content": f"Question {i}: how do I keep a plant alive?"}],
             "chosen": f"Water it weekly and give it light ({i}).", "rejected": f"Plants are hard ({i})."}
            for i in range(n)]
    return gzip.compress(b"\n".join(orjson.dumps(r) for r in rows) + b"\n")


def post(port, path, token, body):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    started = time.perf_counter()
    conn.request("POST", path, body=body, headers={"Authorization": f"Token {token}",
                                                   "Content-Type": "application/x-ndjson"})
    response = conn.getresponse()
    payload = response.read()
    elapsed = time.perf_counter() - started
    conn.close()
    return response.status, payload, elapsed


def imported(port, path, token, body):
    status, payload, elapsed = post(port, path, token, body)
    if status != 201:
        raise SystemExit(f"import answered {status}: {payload[:500]!r}")
    return json.loads(payload), elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=SHARED_DATA / "hh_rlhf_pairs.jsonl.gz")
    parser.add_argument("--port", type=int, default=8208)
    parser.add_argument("--database", default="rankloop_bench_preference_import")
    args = parser.parse_args()

    env = production_env(recreate_postgres_database(args.database))
    setup_django(env)
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from labeling.models import PreferencePair, Project

    admin = get_user_model().objects.create_user("bench-admin", password="bench-admin-pw", is_staff=True)
    token = Token.objects.create(user=admin).key
    project = Project.objects.create(name="Preference import bench")
    crowd = Project.objects.create(name="Preference import crowd")
    body = args.data.read_bytes() if args.data.exists() else synthetic_file(6267)
    print(f"file: {args.data if args.data.exists() else 'synthetic'}, {len(body) / 2**20:.1f} MiB", flush=True)
    url = f"/api/v1/projects/{project.slug}/preferences/import/?source=bench"
    with Gunicorn(env, args.port, workers=2, threads=2):
        imported(args.port, f"/api/v1/projects/{crowd.slug}/preferences/import/?source=warmup", token,
                 synthetic_file(10))
        report, elapsed = imported(args.port, url, token, body)
        again, elapsed_again = imported(args.port, url, token, body)
        fresh, statuses = synthetic_file(2000), []

        def one():
            statuses.append(post(args.port, f"/api/v1/projects/{crowd.slug}/preferences/import/?source=crowd", token,
                                 fresh)[0])

        threads = [threading.Thread(target=one) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    pairs = report["pairs_created"]
    stored = PreferencePair.objects.filter(project=project, source="import:bench").count()
    assert stored == pairs and again["pairs_created"] == 0, (report, again, stored)
    crowd_pairs = PreferencePair.objects.filter(project=crowd, source="import:crowd").count()
    print(f"import: {pairs:,} pairs ({report['prompts_created']:,} prompts, {report['candidates_created']:,} "
          f"candidates) in {elapsed:.2f} s = {pairs / elapsed:,.0f} pairs/s")
    print(f"re-import of the same file: 0 created, {again['pairs_skipped_existing']:,} skipped "
          f"in {elapsed_again:.2f} s")
    print(f"three concurrent imports of a 2,000-pair file: statuses {sorted(statuses)}, {crowd_pairs:,} pairs stored")
    print(json.dumps({"pairs": pairs, "pairs_per_s": round(pairs / elapsed), "reimport_s": round(elapsed_again, 2),
                      "concurrent_statuses": sorted(statuses)}))


if __name__ == "__main__":
    main()
