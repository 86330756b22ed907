"""What every benchmark stands on: the databases, a web server, Celery workers, peak memory.

The runner and the cases both import this module; nothing here imports Django, so the
runner stays a plain process that starts the others. Databases: PostgreSQL at
``DATABASE_URL`` (default ``postgres://postgres@127.0.0.1:5432/masivo_bench``) and a SQLite
file under ``var/bench``; Celery's broker and the shared cache: Redis database 9.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var" / "bench"
DATA_DIR = VAR_DIR / "data"
RUN_DIR = VAR_DIR / "run"
PYTHON = sys.executable
SETTINGS = "tests.benchmarks.settings"
DEFAULT_PG_URL = "postgres://postgres@127.0.0.1:5432/masivo_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/9"
SANDBOX_API_KEY = "sandbox-api-key"
READY_TIMEOUT_S = 90.0


@dataclass(frozen=True)
class Database:
    key: str  # "postgresql" or "sqlite"
    label: str
    url: str

    @property
    def is_postgresql(self) -> bool:
        return self.key == "postgresql"

    @property
    def sqlite_path(self) -> Path:
        return Path(urlsplit(self.url).path)

    @property
    def sqlite_template(self) -> Path:
        return self.sqlite_path.with_name("template.sqlite3")


def databases() -> dict[str, Database]:
    sqlite_file = VAR_DIR / "bench.sqlite3"
    return {
        "postgresql": Database("postgresql", "PostgreSQL", postgresql_url()),
        "sqlite": Database("sqlite", "SQLite", f"sqlite:///{sqlite_file}"),
    }


def postgresql_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    return url if url.startswith(("postgres://", "postgresql://")) else DEFAULT_PG_URL


def redis_url() -> str:
    return os.environ.get("BENCH_REDIS_URL") or DEFAULT_REDIS_URL


def environment(database: Database, **extra: object) -> dict[str, str]:
    """The environment of every process of a benchmark run on ``database``."""
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": SETTINGS,
            "DATABASE_URL": database.url,
            "CELERY_BROKER_URL": redis_url(),
            "CACHE_URL": "",
            "MIGRATION_VAR_DIR": str(VAR_DIR.relative_to(BASE_DIR)),
            "MASIVO_SANDBOX": "1",
            "MASIVO_API_KEY": SANDBOX_API_KEY,
            "MASIVO_TOKEN": "",
            "SANDBOX_API_KEY": SANDBOX_API_KEY,
            "PYTHONPATH": str(BASE_DIR),
            "PYTHONUNBUFFERED": "1",
            "BENCH_DATABASE": database.key,
        }
    )
    env.update({name: str(value) for name, value in extra.items()})
    return env


def manage(database: Database, *args: str) -> None:
    subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=BASE_DIR,
        env=environment(database),
        check=True,
        stdout=subprocess.DEVNULL,
    )


def database_prepare(database: Database) -> None:
    """Create the database when missing, migrate it, and keep a clean copy (SQLite)."""
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    if database.is_postgresql:
        import psycopg

        parts = urlsplit(database.url)
        name = parts.path.lstrip("/")
        admin_url = parts._replace(path="/postgres").geturl()
        with psycopg.connect(admin_url, autocommit=True) as connection:
            exists = connection.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [name]
            ).fetchone()
            if not exists:
                connection.execute(f'CREATE DATABASE "{name}"')
        manage(database, "migrate", "--noinput")
    else:
        for path in _sqlite_files(database.sqlite_path):
            path.unlink(missing_ok=True)
        manage(database, "migrate", "--noinput")
        shutil.copyfile(database.sqlite_path, database.sqlite_template)


def _sqlite_files(path: Path) -> list[Path]:
    return [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]


def database_reset(database: Database) -> None:
    """Empty every table (and the broker and cache) before a run."""
    if database.is_postgresql:
        manage(database, "flush", "--noinput")
    else:
        for path in _sqlite_files(database.sqlite_path):
            path.unlink(missing_ok=True)
        shutil.copyfile(database.sqlite_template, database.sqlite_path)
    redis_flush()


def redis_flush() -> None:
    import redis

    redis.Redis.from_url(redis_url()).flushdb()


# --- processes ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        for child in children.get(current, []):
            found.append(child)
            todo.append(child)
    return found


def peak_rss_mb(pid: int) -> float:
    """The highest peak resident memory (VmHWM) of ``pid`` and of each of its descendants."""
    peak = 0
    for each in [pid, *_descendants(pid)]:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
    return peak / 1024


@dataclass
class Process:
    """A server or worker started for a benchmark, in its own process group."""

    name: str
    process: subprocess.Popen
    log_path: Path
    url: str = ""
    extra: dict = field(default_factory=dict)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def is_running(self) -> bool:
        return self.process.poll() is None

    def peak_rss_mb(self) -> float:
        return peak_rss_mb(self.process.pid)

    def stop(self) -> None:
        if self.is_running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=20)

    def __enter__(self) -> Process:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _spawn(name: str, command: list[str], env: dict[str, str]) -> Process:
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    log_path = RUN_DIR / f"{name}-{uuid.uuid4().hex[:8]}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Process(name=name, process=process, log_path=log_path)


def _fail(started: Process, why: str) -> None:
    started.stop()
    raise RuntimeError(f"{started.name} {why}:\n{started.log()[-4000:]}")


def server_start(database: Database, *, workers: int = 1, **env: object) -> Process:
    """The console (admin, API and sandbox) under gunicorn, as in production."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        PYTHON, "-m", "gunicorn", "config.wsgi:application",
        "--bind", f"127.0.0.1:{port}",
        "--workers", str(workers),
        "--timeout", "900",
        "--graceful-timeout", "5",
    ]  # fmt: skip
    started = _spawn("server", command, environment(database, **env))
    started.url = url
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        try:
            with urllib.request.urlopen(f"{url}/admin/login/", timeout=5) as answer:  # noqa: S310
                if answer.status == 200:
                    return started
        except (urllib.error.URLError, OSError):
            pass
        if not started.is_running:
            _fail(started, "exited before it was ready")
        if time.monotonic() > deadline:
            _fail(started, "was not ready in time")
        time.sleep(0.1)


def worker_start(
    database: Database, *, concurrency: int = 1, server_url: str = "", **env: object
) -> Process:
    """A Celery worker like ``make run``'s, on the benchmark's database and broker; with
    ``server_url``, Masivo is the sandbox served there."""
    if server_url:
        env = {
            "MASIVO_BASE_URL": f"{server_url}/sandbox/api/storefront/v1",
            "MASIVO_AUTH_URL": f"{server_url}/sandbox/auth/authorize",
            **env,
        }
    name = uuid.uuid4().hex[:8]
    command = [
        PYTHON, "-m", "celery", "-A", "config", "worker",
        "--pool=prefork", f"--concurrency={concurrency}", "--loglevel=INFO",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
        f"--hostname=bench-{name}@%h",
    ]  # fmt: skip
    started = _spawn("worker", command, environment(database, **env))
    deadline = time.monotonic() + READY_TIMEOUT_S
    while " ready." not in started.log():
        if not started.is_running:
            _fail(started, "exited before it was ready")
        if time.monotonic() > deadline:
            _fail(started, "was not ready in time")
        time.sleep(0.05)
    return started


def case_run(database: Database, case: str, *, run: int, timeout_s: float = 900) -> dict:
    """Run one case in a fresh process; its figures come back as the last line of output."""
    completed = subprocess.run(
        [PYTHON, "-m", "tests.benchmarks.case", case, "--run", str(run)],
        cwd=BASE_DIR,
        env=environment(database),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"case {case} on {database.label} failed:\n{completed.stdout[-3000:]}\n"
            f"{completed.stderr[-6000:]}"
        )
    return json.loads(completed.stdout.strip().splitlines()[-1])
