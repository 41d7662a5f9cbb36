"""Export benchmark: bulk-insert N preference pairs on Postgres (1,000,000 by default), export
them through the HTTP API under gunicorn (production settings, loopback), and report rows/s
and the peak RSS growth of the server process that streamed them.

Targets: >= 50,000 rows/s, < 50 MB RSS growth.

    .venv/bin/python bench/export.py [--pairs 1000000] [--format standard] [--port 8201]

Last line: one JSON object {"rows", "rows_per_s", "rss_growth_mb"}."""
from __future__ import annotations

import argparse
import http.client
import json
import threading
import time

from support.server import Gunicorn, process_rss_bytes, production_env, recreate_postgres_database, setup_django

K = 5  # candidates per task: C(5, 2) = 10 pairs per task
PAIRS_PER_TASK = K * (K - 1) // 2


def seed(n_pairs: int):
    """Prompts, K candidates each, one complete task each and its C(K,2) pairs, in set-based SQL."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from rest_framework.authtoken.models import Token

    from labeling.models import Project

    admin = get_user_model().objects.create_user("bench-admin", password="bench-admin-pw", is_staff=True)
    project = Project.objects.create(name="Export bench", mode="ranking", candidates_per_prompt=K)
    n_tasks = -(-n_pairs // PAIRS_PER_TASK)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("""
            INSERT INTO labeling_prompt (uid, project_id, messages, tags, source, split, created_at)
            SELECT gen_random_uuid(), %s,
                   jsonb_build_array(jsonb_build_object('role', 'user', 'content',
                       'Question ' || g || ': how would you explain preference learning to a new colleague, '
                       || 'briefly and with one example?')),
                   '[]'::jsonb, 'bench', CASE WHEN g %% 10 = 0 THEN 'heldout' ELSE 'train' END, now()
            FROM generate_series(1, %s) g""", [project.pk, n_tasks])
        cursor.execute("""
            INSERT INTO labeling_candidate (prompt_id, text, decoding, external_source, external_id, generation_note,
                                            moderation, is_flagged, created_at)
            SELECT p.id, 'Answer ' || k || ' to prompt ' || p.id || '. ' || repeat('A preference pair says '
                   || 'which of two answers people liked better, and a reward model learns from many. ', 3),
                   '{}'::jsonb, 'bench', '', '', '{}'::jsonb, false, now()
            FROM labeling_prompt p CROSS JOIN generate_series(1, %s) k
            WHERE p.project_id = %s ORDER BY p.id, k""", [K, project.pk])
        cursor.execute("""
            INSERT INTO labeling_comparisontask (project_id, prompt_id, status, overlap, annotations_done, leased,
                                                 is_gold, priority, created_at, completed_at)
            SELECT %s, p.id, 'complete', 1, 1, 0, false, 0, now(), now()
            FROM labeling_prompt p WHERE p.project_id = %s ORDER BY p.id""", [project.pk, project.pk])
        cursor.execute("""
            INSERT INTO labeling_preferencepair (project_id, task_id, prompt_id, candidate_a_id, candidate_b_id,
                chosen_id, rejected_id, votes_a, votes_b, votes_tie, is_tie, agreement, margin, is_gold, split,
                updated_at)
            SELECT %s, t.id, t.prompt_id, a.id, b.id, a.id, b.id, 1, 0, 0, false, 1.0, 1.0, false, p.split, now()
            FROM labeling_comparisontask t
            JOIN labeling_prompt p ON p.id = t.prompt_id
            JOIN labeling_candidate a ON a.prompt_id = t.prompt_id
            JOIN labeling_candidate b ON b.prompt_id = t.prompt_id AND a.id < b.id
            WHERE t.project_id = %s
            ORDER BY t.id, a.id, b.id LIMIT %s""", [project.pk, project.pk, n_pairs])
        cursor.execute("ANALYZE")
    return project, Token.objects.create(user=admin).key


class RssSampler(threading.Thread):
    """Samples the RSS of the server's processes every 20 ms; reports the largest growth of
    any one process over its baseline."""

    def __init__(self, pids):
        super().__init__(daemon=True)
        self.baseline = {pid: process_rss_bytes(pid) for pid in pids}
        self.peak = dict(self.baseline)
        self.stopped = threading.Event()

    def run(self):
        while not self.stopped.is_set():
            for pid in self.baseline:
                self.peak[pid] = max(self.peak[pid], process_rss_bytes(pid))
            time.sleep(0.02)

    def growth_mb(self):
        return max(self.peak[pid] - self.baseline[pid] for pid in self.baseline) / 2**20


def stream(port, path, token):
    """GET path and read the body as it comes; returns (rows, bytes, seconds to the last byte)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    started = time.perf_counter()
    conn.request("GET", path, headers={"Authorization": f"Token {token}"})
    response = conn.getresponse()
    if response.status != 200:
        raise SystemExit(f"export answered {response.status}: {response.read()[:500]!r}")
    rows = size = 0
    while chunk := response.read(1 << 20):
        rows += chunk.count(b"\n")
        size += len(chunk)
    elapsed = time.perf_counter() - started
    conn.close()
    return rows, size, elapsed, response.getheader("Content-Disposition")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--format", default="standard", choices=["standard", "conversational"])
    parser.add_argument("--port", type=int, default=8201)
    parser.add_argument("--database", default="rankloop_bench_api")
    args = parser.parse_args()

    env = production_env(recreate_postgres_database(args.database))
    setup_django(env)
    started = time.perf_counter()
    project, token = seed(args.pairs)
    print(f"seeded {args.pairs:,} pairs ({args.pairs // PAIRS_PER_TASK:,} prompts x {K} candidates) "
          f"in {time.perf_counter() - started:.1f} s", flush=True)
    path = f"/api/v1/projects/{project.slug}/export/?format={args.format}"
    with Gunicorn(env, args.port, workers=1, threads=2) as server:
        # Warm-up: an empty export loads the code and opens the database connection; the
        # baseline is taken after it, so the growth is what streaming the rows costs.
        stream(args.port, path + "&rounds=999999", token)
        sampler = RssSampler(server.pids())
        sampler.start()
        cpu_before = server.cpu_seconds()
        rows, size, elapsed, disposition = stream(args.port, path, token)
        sampler.stopped.set()
        sampler.join()
        cpu = server.cpu_seconds() - cpu_before
    rows_per_s = rows / elapsed
    print(f"export ({args.format}): {rows:,} rows, {size / 2**20:.1f} MiB in {elapsed:.2f} s "
          f"= {rows_per_s:,.0f} rows/s, {size / 2**20 / elapsed:.1f} MiB/s; file name {disposition}")
    print(f"server CPU {cpu:.1f} s; peak RSS growth of the serving process {sampler.growth_mb():.1f} MB "
          f"(targets: >= 50,000 rows/s, < 50 MB)")
    print(json.dumps({"rows": rows, "rows_per_s": round(rows_per_s), "rss_growth_mb": round(sampler.growth_mb(), 1)}))


if __name__ == "__main__":
    main()
