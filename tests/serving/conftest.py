"""A real `transformers serve` on the tiny model (started once per run) and a live rankloop served
by uvicorn from rankloop.asgi (the way production serves it), in a thread of the test process so
it sees the test database."""
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from rest_framework.authtoken.models import Token

from models_app import services as models_services
from models_app.models import ModelVersion

# Playwright's sync API and the live server's thread: the tests' ORM calls are still sync.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(url, process=None, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up in {timeout} s")


@pytest.fixture(scope="session")
def transformers_serve(tiny_model_dir, tmp_path_factory):
    """`transformers serve` (the embedded upstream) on a free port, the tiny model preloaded by
    a first request. Yields its base URL (…/v1)."""
    port = free_port()
    log = tmp_path_factory.mktemp("ts") / "serve.log"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    binary = Path(sys.executable).with_name("transformers")
    with open(log, "w") as out:
        process = subprocess.Popen(
            [str(binary), "serve", "--host", "127.0.0.1", "--port", str(port),
             "--device", "cpu", "--log-level", "warning"],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(f"{base}/health", process)
        httpx.post(f"{base}/v1/chat/completions", timeout=60, json={
            "model": str(tiny_model_dir), "messages": [{"role": "user", "content": "warm up"}], "max_tokens": 2})
        yield f"{base}/v1"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="session")
def live_asgi(django_db_setup, django_db_blocker):
    """rankloop.asgi:application under uvicorn in a thread. Yields its URL."""
    import uvicorn

    from rankloop.asgi import application

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(application, host="127.0.0.1", port=port, lifespan="off",
                                           log_level="warning", timeout_graceful_shutdown=1))
    with django_db_blocker.unblock():
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        _wait_for(f"http://127.0.0.1:{port}/accounts/login/")
        yield f"http://127.0.0.1:{port}"
        server.should_exit = True
        thread.join(5)
        # The server's threads keep their database connections; end them, or the test
        # database cannot be dropped at the end of the run.
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE datname = current_database() AND pid <> pg_backend_pid()")


class HangingUpstream:
    """Accepts connections and never answers (an upstream that hangs)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.held = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self):
        self.sock.close()
        for conn in self.held:
            conn.close()


class ScriptedUpstream:
    """An OpenAI-compatible server that streams the answer in the pieces it is given (the
    boundary a real model server sits at, with the chunking under the test's control).
    `pieces`: a list, or a function of the request's body giving one; `delay`: seconds between
    pieces; `sent`: per request, its seed and how many pieces went out before the end or before
    the client closed the connection."""

    def __init__(self):
        import http.server
        import json

        scripted = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                pieces = scripted.pieces(body) if callable(scripted.pieces) else scripted.pieces
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                sent = 0
                try:
                    for piece in pieces:
                        chunk = {"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
                        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                        self.wfile.flush()
                        sent += 1
                        time.sleep(scripted.delay)
                    end = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
                    self.wfile.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    scripted.sent.append((body.get("seed"), sent))

            def log_message(self, *args):
                pass

        self.pieces, self.delay, self.sent = [], 0.0, []
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def scripted_upstream():
    upstream = ScriptedUpstream()
    yield upstream
    upstream.close()


@pytest.fixture
def hanging_upstream():
    upstream = HangingUpstream()
    yield f"http://127.0.0.1:{upstream.port}/v1"
    upstream.close()


@pytest.fixture
def serving_setup(transactional_db, transformers_serve, tiny_model_dir, make_project, make_user, settings):
    """A project whose deployed policy is the tiny model on the embedded upstream, a member
    with an API token, and the settings pointing "embedded" at the test's transformers serve."""
    settings.RANKLOOP_EMBEDDED_UPSTREAM_URL = transformers_serve
    settings.RANKLOOP_UPSTREAM_READ_TIMEOUT_S = 20
    user = make_user("chatter", password="chatter-secret-pw")
    project = make_project(name="Chat demo", annotators=[user])
    version = ModelVersion.objects.create(kind=ModelVersion.Kind.POLICY, name="tiny-policy", base_model="tiny",
                                          artifact_dir=str(tiny_model_dir))
    models_services.deploy(project, version)
    token = Token.objects.create(user=user)
    return {"user": user, "project": project, "version": version, "token": token.key}
