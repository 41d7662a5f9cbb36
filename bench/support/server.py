"""Shared pieces for benchmarks that run rankloop as in production: a fresh database,
gunicorn on loopback, and the CPU time its processes use."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLK_TCK = os.sysconf("SC_CLK_TCK")


def production_env(database_url: str, **extra) -> dict:
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": database_url, "DEBUG": "0", "SECRET_KEY": "bench-" + "x" * 60,
        "SECURE_SSL_REDIRECT": "0", "SESSION_COOKIE_SECURE": "0", "CSRF_COOKIE_SECURE": "0",
        "SECURE_HSTS_SECONDS": "0", "LOG_LEVEL": "WARNING", "API_THROTTLE_USER": "100000000/hour",
        "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT),
    })
    env.update(extra)
    return env


def recreate_postgres_database(name: str) -> str:
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-q",
                    "-c", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'],
                   check=True, capture_output=True)
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-q", "-c", f'CREATE DATABASE "{name}"'],
                   check=True, capture_output=True)
    return f"postgres://postgres@127.0.0.1:5432/{name}"


def setup_django(env: dict):
    """Configure Django in this process with the benchmark's environment."""
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rankloop.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


class Gunicorn:
    """gunicorn serving rankloop.wsgi on loopback; measures the CPU its processes use."""

    def __init__(self, env: dict, port: int, workers: int = 2, threads: int = 4):
        self.env, self.port, self.workers, self.threads = env, port, workers, threads
        self.proc = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        gunicorn = str(Path(sys.executable).parent / "gunicorn")
        self.proc = subprocess.Popen(
            [gunicorn, "rankloop.wsgi", "-b", f"127.0.0.1:{self.port}", "-w", str(self.workers),
             "--threads", str(self.threads), "-k", "gthread", "--keep-alive", "30", "--log-level", "warning",
             "--backlog", "256"],
            cwd=ROOT, env=self.env, start_new_session=True,
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                urllib.request.urlopen(self.url + "/accounts/login/", timeout=2)
                break
            except Exception:
                if self.proc.poll() is not None:
                    raise RuntimeError("gunicorn exited at start") from None
                time.sleep(0.3)
        else:
            raise RuntimeError("gunicorn did not answer within 60 s")
        return self

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)

    def pids(self):
        out = subprocess.run(["pgrep", "-g", str(self.proc.pid)], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    def cpu_seconds(self):
        return sum(process_cpu_seconds(pid) for pid in self.pids())

    def rss_bytes(self):
        return sum(process_rss_bytes(pid) for pid in self.pids())


def process_cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def process_rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def postgres_cpu_seconds() -> float:
    out = subprocess.run(["pgrep", "-x", "postgres"], capture_output=True, text=True).stdout
    return sum(process_cpu_seconds(int(p)) for p in out.split())


def percentile(values, q):
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]
