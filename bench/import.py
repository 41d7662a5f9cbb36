"""Import benchmark: 100,000 prompts (chat messages, external ids, tags) from one JSON Lines
file, POSTed to the HTTP API under gunicorn (production settings, Postgres, loopback). The
time runs from the first byte sent to the answer, so it covers upload, whole-file validation
and the batched inserts in one transaction.

Target: >= 20,000 rows/s.

    .venv/bin/python bench/import.py [--prompts 100000] [--port 8202]

Last line: one JSON object {"rows", "rows_per_s"}."""
from __future__ import annotations

import argparse
import http.client
import json
import time

import orjson
from support.server import Gunicorn, production_env, recreate_postgres_database, setup_django


def make_file(n: int) -> bytes:
    rows = []
    for i in range(n):
        if i % 3 == 0:
            prompt = [{"role": "system", "content": "You are a careful assistant."},
                      {"role": "user", "content": f"Prompt {i}: summarise the trade-offs of PPO versus DPO."}]
        else:
            prompt = f"Prompt {i}: write a short, friendly explanation of keyset pagination."
        rows.append({"prompt": prompt, "external_id": f"bench-{i}", "tags": ["bench", f"batch-{i % 10}"]})
    return b"\n".join(orjson.dumps(r) for r in rows) + b"\n"


def post(port, path, token, body):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    started = time.perf_counter()
    conn.request("POST", path, body=body, headers={"Authorization": f"Token {token}",
                                                   "Content-Type": "application/x-ndjson"})
    response = conn.getresponse()
    payload = response.read()
    elapsed = time.perf_counter() - started
    conn.close()
    if response.status != 201:
        raise SystemExit(f"import answered {response.status}: {payload[:500]!r}")
    return json.loads(payload), elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=100_000)
    parser.add_argument("--port", type=int, default=8202)
    parser.add_argument("--database", default="rankloop_bench_api_import")
    args = parser.parse_args()

    env = production_env(recreate_postgres_database(args.database))
    setup_django(env)
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from labeling.models import Project, Prompt

    admin = get_user_model().objects.create_user("bench-admin", password="bench-admin-pw", is_staff=True)
    token = Token.objects.create(user=admin).key
    project = Project.objects.create(name="Import bench")
    warmup = Project.objects.create(name="Import warm-up")
    body = make_file(args.prompts)
    print(f"file: {args.prompts:,} prompts, {len(body) / 2**20:.1f} MiB", flush=True)
    with Gunicorn(env, args.port, workers=1, threads=2):
        post(args.port, f"/api/v1/projects/{warmup.slug}/import/", token, make_file(10))
        report, elapsed = post(args.port, f"/api/v1/projects/{project.slug}/import/", token, body)
        again, elapsed_again = post(args.port, f"/api/v1/projects/{project.slug}/import/", token, body)
    stored = Prompt.objects.filter(project=project).count()
    assert report["prompts_created"] == stored == args.prompts, (report, stored)
    assert again["prompts_created"] == 0 and again["prompts_skipped_existing"] == args.prompts
    rows_per_s = args.prompts / elapsed
    print(f"import: {args.prompts:,} prompts in {elapsed:.2f} s = {rows_per_s:,.0f} rows/s (target >= 20,000)")
    print(f"re-import of the same file: 0 created, {args.prompts:,} skipped in {elapsed_again:.2f} s")
    print(json.dumps({"rows": args.prompts, "rows_per_s": round(rows_per_s)}))


if __name__ == "__main__":
    main()
