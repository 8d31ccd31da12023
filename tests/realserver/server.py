"""Run llama.cpp's ``llama-server`` on 127.0.0.1 for tests.

``ensure_llama_server()`` returns a working binary, building it once per machine with
``build_llama_server.sh`` (about 6 minutes on 2 cores; cached outside the repository).
``LlamaServer`` starts it on a free port with a given model and stops it again::

    binary = ensure_llama_server()
    with LlamaServer(binary, model_path, alias="tiny") as server:
        httpx.post(server.base_url + "/chat/completions", json=...)
"""

from __future__ import annotations

import collections
import json
import os
import pathlib
import socket
import subprocess
import tempfile
import threading
import time
import types
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import IO

__all__ = [
    "BUILD_SCRIPT",
    "LlamaServer",
    "LlamaServerError",
    "ensure_llama_server",
    "free_port",
]

#: The script that builds (or finds the cached) llama-server and prints its path last.
BUILD_SCRIPT = pathlib.Path(__file__).with_name("build_llama_server.sh")
#: Environment variable naming an existing llama-server binary, which skips the build.
OVERRIDE_ENV = "INFERWATCH_LLAMA_SERVER"


class LlamaServerError(RuntimeError):
    """llama-server could not be built, or did not start and become healthy."""


def ensure_llama_server() -> pathlib.Path:
    """Return the path of a llama-server binary, building it first if it is not cached.

    ``$INFERWATCH_LLAMA_SERVER``, when set, names the binary to use and skips the build.
    Otherwise ``build_llama_server.sh`` runs (its progress goes to this process's stderr) and
    the last line it prints is the binary's path.
    """
    override = os.environ.get(OVERRIDE_ENV)
    if override:
        path = pathlib.Path(override)
        if not path.is_file() or not os.access(path, os.X_OK):
            raise LlamaServerError(f"${OVERRIDE_ENV}={override} is not an executable file")
        return path
    proc = subprocess.run(
        ["bash", str(BUILD_SCRIPT)],
        stdout=subprocess.PIPE,
        stderr=None,
        stdin=subprocess.DEVNULL,
        text=True,
        check=False,
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise LlamaServerError(
            f"{BUILD_SCRIPT.name} failed with exit code {proc.returncode}; see its stderr"
        )
    path = pathlib.Path(lines[-1].strip())
    if not path.is_file():
        raise LlamaServerError(f"{BUILD_SCRIPT.name} printed {path}, which does not exist")
    return path


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LlamaServer:
    """A llama-server process on 127.0.0.1, as a context manager.

    On enter it picks a free port, starts the server and waits until ``GET /health`` answers
    ``{"status": "ok"}``; on exit it terminates the process (and kills it if it lingers).
    The server's combined stdout/stderr goes to a log file; ``log_tail()`` reads its end.
    """

    def __init__(
        self,
        binary: pathlib.Path | str,
        model: pathlib.Path | str,
        alias: str,
        *,
        api_key: str | None = None,
        ctx_size: int = 2048,
        threads: int = 2,
        parallel: int = 2,
        extra_args: Sequence[str] = (),
        startup_timeout: float = 60.0,
        log_path: pathlib.Path | None = None,
    ) -> None:
        """Configure the server; nothing starts until ``start()`` or ``with``."""
        self.binary = pathlib.Path(binary)
        self.model = pathlib.Path(model)
        self.alias = alias
        self.api_key = api_key
        self.ctx_size = ctx_size
        self.threads = threads
        self.parallel = parallel
        self.extra_args = tuple(extra_args)
        self.startup_timeout = startup_timeout
        self.log_path = log_path
        self.port: int | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._own_log_dir: tempfile.TemporaryDirectory[str] | None = None
        self._lock = threading.Lock()

    @property
    def host_url(self) -> str:
        """The server's root URL, e.g. ``http://127.0.0.1:PORT`` (``/health`` lives here)."""
        if self.port is None:
            raise LlamaServerError("server is not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL, e.g. ``http://127.0.0.1:PORT/v1``."""
        return self.host_url + "/v1"

    def command(self) -> list[str]:
        """Return the command line used to start the server."""
        if self.port is None:
            raise LlamaServerError("no port chosen yet")
        cmd = [
            str(self.binary),
            "-m",
            str(self.model),
            "--alias",
            self.alias,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "-c",
            str(self.ctx_size),
            "-t",
            str(self.threads),
            "--parallel",
            str(self.parallel),
            "--no-webui",
        ]
        if self.api_key is not None:
            cmd += ["--api-key", self.api_key]
        cmd += list(self.extra_args)
        return cmd

    def start(self) -> LlamaServer:
        """Start the server and block until it is healthy; raise ``LlamaServerError`` if not."""
        with self._lock:
            if self.process is not None:
                raise LlamaServerError("server already started")
            if self.log_path is None:
                self._own_log_dir = tempfile.TemporaryDirectory(prefix="llama-server-")
                self.log_path = pathlib.Path(self._own_log_dir.name) / "server.log"
            self.port = free_port()
            self._log_file = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
            self.process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
            )
        try:
            self._wait_healthy()
        except BaseException:
            self.cleanup()  # the error message already carries the log tail
            raise
        return self

    def _wait_healthy(self) -> None:
        """Poll ``/health`` until it reports ok, the process exits, or the timeout passes."""
        assert self.process is not None
        deadline = time.monotonic() + self.startup_timeout
        last = "no answer yet"
        while True:
            code = self.process.poll()
            if code is not None:
                raise LlamaServerError(
                    f"llama-server exited with code {code} during startup; log tail:\n"
                    + self.log_tail()
                )
            try:
                with urllib.request.urlopen(self.host_url + "/health", timeout=2.0) as resp:
                    body = resp.read()
                if json.loads(body) == {"status": "ok"}:
                    return
                last = body.decode(errors="replace")
            except urllib.error.HTTPError as exc:  # 503 "Loading model" while starting
                last = f"HTTP {exc.code}"
            except (OSError, ValueError) as exc:
                last = repr(exc)
            if time.monotonic() > deadline:
                raise LlamaServerError(
                    f"llama-server not healthy after {self.startup_timeout:.0f} s "
                    f"(last /health: {last}); log tail:\n" + self.log_tail()
                )
            time.sleep(0.05)

    def log_tail(self, lines: int = 40) -> str:
        """Return the last ``lines`` lines of the server's log."""
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        if self._log_file is not None and not self._log_file.closed:
            self._log_file.flush()
        with open(self.log_path, "rb") as f:
            tail = collections.deque(f, maxlen=lines)
        return b"".join(tail).decode(errors="replace")

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the server (SIGTERM, then SIGKILL after ``timeout`` s) and close the log."""
        with self._lock:
            proc, self.process = self.process, None
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if self._log_file is not None:
                self._log_file.close()
                self._log_file = None

    def cleanup(self) -> None:
        """Stop the server and remove the log folder it created, if any."""
        self.stop()
        if self._own_log_dir is not None:
            self._own_log_dir.cleanup()
            self._own_log_dir = None
            self.log_path = None

    def __enter__(self) -> LlamaServer:
        """Start the server (see ``start()``)."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        """Terminate the server and remove its temporary log."""
        self.cleanup()
