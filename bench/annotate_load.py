"""Annotation throughput under load, as in production: gunicorn, Postgres (or SQLite).

Seeds N pairwise tasks with overlap 1, then C simulated annotators over loopback each loop
next-task -> submit through the REST API until the queue is empty (or --seconds pass).
Prints annotations/s, p50/p95/p99 latency of both calls, server CPU ms per annotation, and
tasks annotated beyond their overlap (must be 0). The peer: Label Studio 1.23 on Postgres
under gunicorn served 16.0 annotations/s with 8 clients on this kind of 2-core machine.

    .venv/bin/python bench/annotate_load.py                   # 8 clients, Postgres
    .venv/bin/python bench/annotate_load.py --clients 32
    .venv/bin/python bench/annotate_load.py --db sqlite
    .venv/bin/python bench/annotate_load.py --gold-share 0.1   # the same run without gold first, then with

With --gold-share, the same load runs without and with gold, alternating (--repeats times each),
the gold project serving gold tasks at that share (enough of them for every client); the last
figure is the best server CPU per annotation with gold over the best without (target <= 1.05).
"""
import argparse
import http.client
import json
import random
import tempfile
import threading
import time
import uuid

from support.server import (
    Gunicorn,
    percentile,
    postgres_cpu_seconds,
    production_env,
    recreate_postgres_database,
    setup_django,
)

LABEL_STUDIO_ANNOTATIONS_PER_S = 16.0


def seed(n_tasks, n_clients, gold_share=0.0):
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from rest_framework.authtoken.models import Token

    from labeling.models import Candidate, ComparisonTask, Membership, Project, Prompt, stable_split

    User = get_user_model()
    with transaction.atomic():
        project = Project.objects.create(name=f"load-{uuid.uuid4().hex[:8]}", overlap=1, allow_ties=True,
                                         gold_share=gold_share)
        # Gold: each client may see every gold task once, about gold_share of its share of the queue.
        n_gold = int(1.5 * gold_share * n_tasks / max(n_clients, 1)) + 10 if gold_share else 0
        prompts = []
        for i in range(n_tasks):
            uid = uuid.uuid4()
            prompts.append(Prompt(
                project=project, uid=uid, split=stable_split(project.pk, uid, 10),
                messages=[{"role": "user", "content": f"Question number {i}: which answer is better?"}]))
        prompts = Prompt.objects.bulk_create(prompts, batch_size=2000)
        candidates = Candidate.objects.bulk_create(
            [Candidate(prompt=p, text=f"Answer {j} to prompt {p.pk}. " * 8) for p in prompts for j in range(2)],
            batch_size=4000)
        tasks = ComparisonTask.objects.bulk_create(
            [ComparisonTask(project=project, prompt=p, overlap=1) for p in prompts], batch_size=2000)
        gold_prompts = Prompt.objects.bulk_create(
            [Prompt(project=project, messages=[{"role": "user", "content": f"Gold question {i}?"}])
             for i in range(n_gold)])
        gold_candidates = Candidate.objects.bulk_create(
            [Candidate(prompt=p, text=f"Gold answer {j} to prompt {p.pk}. " * 8)
             for p in gold_prompts for j in range(2)])
        gold_tasks = ComparisonTask.objects.bulk_create(
            [ComparisonTask(project=project, prompt=p, overlap=ComparisonTask.GOLD_OVERLAP, is_gold=True,
                            gold_ranking=[[gold_candidates[2 * i].pk], [gold_candidates[2 * i + 1].pk]])
             for i, p in enumerate(gold_prompts)])
        tasks += gold_tasks
        candidates += gold_candidates
        Through = ComparisonTask.candidates.through
        Through.objects.bulk_create(
            [Through(comparisontask_id=t.pk, candidate_id=c.pk)
             for i, t in enumerate(tasks) for c in candidates[2 * i:2 * i + 2]], batch_size=4000)
        tokens = []
        for i in range(n_clients):
            user = User.objects.create_user(f"load-{project.pk}-{i}", password=None)
            Membership.objects.create(project=project, user=user)
            tokens.append(Token.objects.create(user=user).key)
    return project, tokens


class Annotator(threading.Thread):
    def __init__(self, port, slug, token, stop_at, choices):
        super().__init__(daemon=True)
        self.port, self.slug, self.stop_at = port, slug, stop_at
        self.headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
        self.next_ms, self.submit_ms, self.errors, self.done = [], [], [], 0
        self.rng = random.Random(token)
        self.choices = choices

    def call(self, conn, path, body):
        started = time.perf_counter()
        conn.request("POST", path, body=body, headers=self.headers)
        response = conn.getresponse()
        data = response.read()
        return response.status, data, (time.perf_counter() - started) * 1000

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            while time.time() < self.stop_at:
                status, data, ms = self.call(conn, f"/api/v1/projects/{self.slug}/next-task/", b"")
                self.next_ms.append(ms)
                if status == 204:
                    return
                if status != 200:
                    self.errors.append(f"next {status}: {data[:200]!r}")
                    return
                assignment = json.loads(data)
                body = json.dumps({"choice": self.rng.choice(self.choices), "time_on_task_ms": 1234}).encode()
                status, data, ms = self.call(conn, f"/api/v1/assignments/{assignment['id']}/submit/", body)
                self.submit_ms.append(ms)
                if status not in (200, 201):
                    self.errors.append(f"submit {status}: {data[:200]!r}")
                    return
                self.done += 1
        except Exception as exc:
            self.errors.append(repr(exc))
        finally:
            conn.close()


def run(args, gold_share):
    if args.db == "postgres":
        database_url = recreate_postgres_database("rankloop_bench_load")
        extra = {}
    else:
        var_dir = tempfile.mkdtemp(prefix="rankloop-bench-")
        database_url = ""
        extra = {"RANKLOOP_VAR_DIR": var_dir}
    env = production_env(database_url, **extra)
    if not database_url:
        env.pop("DATABASE_URL")
    setup_django(env)
    project, tokens = seed(args.tasks, args.clients, gold_share)
    print(f"seeded {args.tasks} pairwise tasks (overlap 1) on {args.db}; gold share {gold_share}; "
          f"{args.clients} clients", flush=True)

    with Gunicorn(env, args.port, workers=args.workers, threads=args.threads) as server:
        cpu_before, pg_before = server.cpu_seconds(), postgres_cpu_seconds()
        client_before = time.process_time()
        started = time.perf_counter()
        clients = [Annotator(args.port, project.slug, t, time.time() + args.seconds, ["a", "b", "tie"]) for t in tokens]
        for c in clients:
            c.start()
        for c in clients:
            c.join()
        elapsed = time.perf_counter() - started
        server_cpu = server.cpu_seconds() - cpu_before
        client_cpu = time.process_time() - client_before
        pg_cpu = postgres_cpu_seconds() - pg_before

    from django.db import connections
    from django.db.models import Count, F

    from labeling.models import Annotation, ComparisonTask

    real = Annotation.objects.filter(task__project=project, task__is_gold=False)
    per_task = real.values("task").annotate(n=Count("id"))
    over = per_task.filter(n__gt=1).count()
    over += ComparisonTask.objects.filter(project=project, annotations_done__gt=F("overlap")).count()
    gold_answers = Annotation.objects.filter(task__project=project, task__is_gold=True).count()
    annotations = sum(c.done for c in clients)
    errors = [e for c in clients for e in c.errors]
    next_ms = [ms for c in clients for ms in c.next_ms]
    submit_ms = [ms for c in clients for ms in c.submit_ms]
    rate = annotations / elapsed
    figures = {
        "db": args.db, "clients": args.clients, "gunicorn_workers": args.workers, "gunicorn_threads": args.threads,
        "tasks": args.tasks, "gold_share": gold_share, "annotations": annotations, "gold_answers": gold_answers,
        "seconds": round(elapsed, 2), "errors": len(errors),
        "annotations_per_s": round(rate, 1),
        "next_p50_ms": round(percentile(next_ms, 50), 2), "next_p95_ms": round(percentile(next_ms, 95), 2),
        "next_p99_ms": round(percentile(next_ms, 99), 2),
        "submit_p50_ms": round(percentile(submit_ms, 50), 2), "submit_p95_ms": round(percentile(submit_ms, 95), 2),
        "submit_p99_ms": round(percentile(submit_ms, 99), 2),
        "server_cpu_ms_per_annotation": round(1000 * server_cpu / max(annotations, 1), 2),
        "postgres_cpu_ms_per_annotation": (round(1000 * pg_cpu / max(annotations, 1), 2)
                                           if args.db == "postgres" else None),
        "client_cpu_ms_per_annotation": round(1000 * client_cpu / max(annotations, 1), 2),
        "over_annotated": over,
        "ratio_vs_label_studio": round(rate / LABEL_STUDIO_ANNOTATIONS_PER_S, 2),
    }
    for e in errors[:5]:
        print("error:", e)
    for key, value in figures.items():
        print(f"{key:>32}: {value}")
    connections.close_all()
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=120, help="stop after this long even if tasks are left")
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (one per core)")
    parser.add_argument("--threads", type=int, default=3, help="threads per gunicorn worker")
    parser.add_argument("--port", type=int, default=8601)
    parser.add_argument("--gold-share", type=float, default=0.0,
                        help="serve gold at this share; runs the same load without gold too, alternating, and compares")
    parser.add_argument("--repeats", type=int, default=2, help="with --gold-share: runs of each, best of them compared")
    args = parser.parse_args()

    if not args.gold_share:
        print(json.dumps(run(args, 0.0)))
        return
    # Alternate the two (the first run of a process starts cold) and compare the best of each.
    runs = {0.0: [], args.gold_share: []}
    for _ in range(args.repeats):
        for share in runs:
            runs[share].append(run(args, share))
    best = {share: min(results, key=lambda f: f["server_cpu_ms_per_annotation"]) for share, results in runs.items()}
    without, figures = best[0.0], dict(best[args.gold_share])
    figures["repeats"] = args.repeats
    figures["no_gold_server_cpu_ms_per_annotation"] = without["server_cpu_ms_per_annotation"]
    figures["no_gold_annotations_per_s"] = without["annotations_per_s"]
    figures["server_cpu_ratio_gold_vs_none"] = round(
        figures["server_cpu_ms_per_annotation"] / without["server_cpu_ms_per_annotation"], 3)
    print(f"{'server_cpu_ratio_gold_vs_none':>32}: {figures['server_cpu_ratio_gold_vs_none']}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
