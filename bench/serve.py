"""The serving gateway's cost, as in production: rankloop under uvicorn (rankloop.asgi, 2
workers) on Postgres in front of `transformers serve` with the default policy (SmolLM2-135M,
bf16, CPU).

1. Time to first token and tokens/s of streamed chats, 1 and 8 at once, through rankloop
   against straight to the upstream (the same requests, interleaved).
2. The annotators' next-task latency (bench/annotate_load.py's clients, over the REST API of
   the same server) alone, then with 16 chat streams open through rankloop.

Last line: one JSON object with ttft_overhead_ms_p50 (rankloop's p50 minus the upstream's, one
stream at a time), tokens_per_s_ratio (rankloop / upstream, 8 streams), and
annotator_next_p99_ms_with_streams.

    .venv/bin/python bench/serve.py                  # default policy, converted once into --model-store
    .venv/bin/python bench/serve.py --rounds 3 --max-tokens 24
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from annotate_load import Annotator, seed  # noqa: E402
from support.server import ROOT, percentile, production_env, recreate_postgres_database, setup_django  # noqa: E402


def wait_for(url, proc, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the server exited")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except Exception:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer in {timeout} s")


class Process:
    def __init__(self, args, env, url):
        self.args, self.env, self.url = args, env, url

    def __enter__(self):
        self.proc = subprocess.Popen(self.args, cwd=ROOT, env=self.env, start_new_session=True,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.url, self.proc)
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


_clients: dict = {}
_clients_lock = threading.Lock()


def http_client(slot) -> httpx.Client:
    """One kept-alive client per concurrent slot, as an application's OpenAI client is: a fresh
    httpx client per request spends 20 to 40 ms building its TLS context, and its noise drowned
    the gateway's few milliseconds. Both routes get the same clients."""
    with _clients_lock:
        if slot not in _clients:
            _clients[slot] = httpx.Client(timeout=300)
        return _clients[slot]


def stream_once(base_url, model, headers, max_tokens, prompt, slot=0):
    """One streamed chat: (time to first token in ms, tokens per second after it, tokens)."""
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
            "temperature": 0, "stream": True, "stream_options": {"include_usage": True}}
    started = time.perf_counter()
    first = None
    tokens = 0
    with http_client(slot).stream("POST", f"{base_url}/chat/completions", json=body, headers=headers) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data:") or line.strip() == "data: [DONE]":
                continue
            chunk = json.loads(line[5:])
            for choice in chunk.get("choices") or []:
                if (choice.get("delta") or {}).get("content") and first is None:
                    first = time.perf_counter()
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
    ended = time.perf_counter()
    first = first or ended
    return (first - started) * 1000, (tokens - 1) / max(ended - first, 1e-6) if tokens > 1 else 0.0, tokens


def concurrent(n, base_url, model, headers, max_tokens, round_no):
    results = [None] * n

    def run(i):
        results[i] = stream_once(base_url, model, headers, max_tokens, f"Tell me about topic {round_no}-{i}.", slot=i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="rounds per concurrency and route")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--annotators", type=int, default=4)
    parser.add_argument("--annotate-seconds", type=float, default=15)
    parser.add_argument("--port", type=int, default=8611)
    parser.add_argument("--upstream-port", type=int, default=8612)
    parser.add_argument("--model-store", default="/tmp/rankloop-bench-models")
    args = parser.parse_args()

    database_url = recreate_postgres_database("rankloop_bench_serve")
    upstream_url = f"http://127.0.0.1:{args.upstream_port}/v1"
    env = production_env(database_url, MODEL_STORE=args.model_store, RANKLOOP_EMBEDDED_UPSTREAM_URL=upstream_url,
                         RANKLOOP_SERVING_REQUESTS_PER_MINUTE="1000000", RANKLOOP_SERVING_TOKENS_PER_DAY="1000000000",
                         RANKLOOP_UPSTREAM_READ_TIMEOUT_S="300", OMP_NUM_THREADS="2")
    setup_django(env)
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from models_app import loading
    from models_app.services import bootstrap_default_model

    project, tokens = seed(2000, args.annotators)
    version = bootstrap_default_model(projects=[project])
    model_dir = str(loading.artifact_path(version))
    chat_user = get_user_model().objects.create_user("bench-chat", is_staff=True)
    chat_token = Token.objects.create(user=chat_user).key
    print(f"model {model_dir}; project {project.slug}", flush=True)

    bin_dir = Path(sys.executable).parent
    upstream = Process([str(bin_dir / "transformers"), "serve", "--host", "127.0.0.1",
                        "--port", str(args.upstream_port),
                        "--device", "cpu", "--dtype", "float32", "--log-level", "warning"], env,
                       f"http://127.0.0.1:{args.upstream_port}/health")
    gateway = Process([str(bin_dir / "uvicorn"), "rankloop.asgi:application", "--host", "127.0.0.1", "--port",
                       str(args.port), "--workers", "2", "--log-level", "warning"], env,
                      f"http://127.0.0.1:{args.port}/accounts/login/")
    rankloop_url = f"http://127.0.0.1:{args.port}/v1"
    auth = {"Authorization": f"Bearer {chat_token}"}
    figures = {"model": version.name, "max_tokens": args.max_tokens, "rounds": args.rounds}
    with upstream, gateway:
        routes = {"upstream": (upstream_url, model_dir, {}), "rankloop": (rankloop_url, project.slug, auth)}
        for route in routes.values():  # warm up: the upstream loads the model, rankloop the tokenizer
            stream_once(*route, 4, "warm up")
            stream_once(*route, 4, "warm up")
        for n in (1, 8):
            samples = {name: [] for name in routes}
            for r in range(args.rounds):
                for name, route in (routes.items() if r % 2 == 0 else reversed(list(routes.items()))):
                    samples[name].extend(concurrent(n, *route, args.max_tokens, r))
            for name, rows in samples.items():
                figures[f"{name}_ttft_ms_p50_x{n}"] = round(percentile([t for t, _, _ in rows], 50), 1)
                figures[f"{name}_tokens_per_s_x{n}"] = round(sum(s for _, s, _ in rows) / len(rows), 2)
            print(f"{n} at once: " + ", ".join(f"{k}={v}" for k, v in figures.items() if k.endswith(f"x{n}")),
                  flush=True)

        def annotate(seconds):
            stop_at = time.time() + seconds
            clients = [Annotator(args.port, project.slug, t, stop_at, ["a", "b", "tie"]) for t in tokens]
            for c in clients:
                c.start()
            for c in clients:
                c.join()
            return [ms for c in clients for ms in c.next_ms], [e for c in clients for e in c.errors]

        alone, errors_alone = annotate(args.annotate_seconds)
        stop = threading.Event()
        open_streams = []

        def chatter(i):
            while not stop.is_set():
                try:
                    stream_once(rankloop_url, project.slug, auth, 256, f"Write a long story number {i}.",
                                slot=f"chatter-{i}")
                    open_streams.append(i)
                except Exception:
                    time.sleep(0.5)

        chatters = [threading.Thread(target=chatter, args=(i,), daemon=True) for i in range(16)]
        for t in chatters:
            t.start()
        time.sleep(3)
        with_streams, errors_streams = annotate(args.annotate_seconds)
        stop.set()
    figures.update({
        "annotator_next_p50_ms_alone": round(percentile(alone, 50), 1),
        "annotator_next_p99_ms_alone": round(percentile(alone, 99), 1),
        "annotator_next_p50_ms_with_streams": round(percentile(with_streams, 50), 1),
        "annotator_next_p99_ms_with_streams": round(percentile(with_streams, 99), 1),
        "annotator_errors": len(errors_alone) + len(errors_streams),
        "ttft_overhead_ms_p50": round(figures["rankloop_ttft_ms_p50_x1"] - figures["upstream_ttft_ms_p50_x1"], 1),
        "tokens_per_s_ratio": round(
            figures["rankloop_tokens_per_s_x8"] / max(figures["upstream_tokens_per_s_x8"], 1e-9), 3),
    })
    for key, value in figures.items():
        print(f"{key:>40}: {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
