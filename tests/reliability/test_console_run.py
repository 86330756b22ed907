"""``manage.py console_run`` (what ``make run`` ends with) stopped by Ctrl-C.

The supervisor runs as the operator's terminal would start it, on the test database and
broker: its web server, worker and beat are real processes. Ctrl-C is a SIGINT to the
supervisor alone, as its children are in sessions of their own. It lands at different
moments: while the children start, as soon as all are ready, a second later, and twice in
quick succession. Each time the supervisor must exit 0 within 10 s, print one stop line per
child (and not Celery's own shutdown line), and leave no process behind in any child's
process group. A child that dies on its own (the worker, SIGKILLed) stops the others and
fails the command, naming it.

The children get a var folder of their own, so that on the filesystem broker their worker
never takes a message meant for another test's worker.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings

from tests.reliability.conftest import figure
from tests.worker import POLL_S, READY_TIMEOUT_S, worker_environment, worker_run_dir

pytestmark = pytest.mark.worker

STOP_BOUND_S = 10.0
GROUPS_GONE_S = 5.0
STOP_LINES = ("Stopped web server", "Stopped worker (", "Stopped beat")
WORKER_LINE = re.compile(r"Stopped worker \((?P<how>[^,]+), (?P<seconds>[\d.]+) s\)\.")
CHILDREN = 3


def free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def processes() -> Iterator[tuple[int, str, str, int, int]]:
    """``(pid, command, state, ppid, pgid)`` of every process, from /proc."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            text = stat.read_text()
            state, ppid, pgid = text[text.rindex(")") + 2 :].split()[:3]
            command = text[text.index("(") + 1 : text.rindex(")")]
            yield int(stat.parent.name), command, state, int(ppid), int(pgid)


def group_members(pgids: set[int]) -> list[str]:
    """``pid state command`` of every process in these process groups, zombies included."""
    return [f"{pid} {state} {cmd}" for pid, cmd, state, _, pgid in processes() if pgid in pgids]


@dataclass
class Console:
    process: subprocess.Popen
    log_path: Path
    port: int
    pgids: set[int] = field(default_factory=set)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def children(self) -> set[int]:
        """The supervisor's children, each the leader of its own process group."""
        return {pid for pid, _, _, ppid, _ in processes() if ppid == self.process.pid}

    def child(self, program: str) -> int:
        """The pid of the child running ``program`` (``runserver``, ``worker``, ``beat``)."""
        for pid in self.pgids:
            with contextlib.suppress(OSError):
                if program in Path(f"/proc/{pid}/cmdline").read_text().split("\0"):
                    return pid
        pytest.fail(f"No child runs {program}.")

    def is_answering(self) -> bool:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
        try:
            connection.request("GET", "/admin/login/")
            return connection.getresponse().status == 200
        except OSError:
            return False
        finally:
            connection.close()

    def wait(self, *, ready: bool) -> None:
        """Until the three children run (and, if ``ready``, answer HTTP and consume)."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            self.pgids |= self.children()
            if len(self.pgids) == CHILDREN and (
                not ready or (" ready." in self.log() and self.is_answering())
            ):
                return
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"The console did not start:\n{self.log()[-5000:]}")
            time.sleep(POLL_S)

    def interrupt(self, *, times: int = 1, gap_s: float = 0.2) -> float:
        """Ctrl-C ``times``; the seconds from the first until the supervisor exited."""
        began = time.monotonic()
        for number in range(times):
            if number:
                time.sleep(gap_s)
            self.process.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=STOP_BOUND_S + 5)
        return round(time.monotonic() - began, 2)

    def kill(self) -> None:
        for pgid in {self.process.pid, *self.pgids}:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
        self.process.wait(timeout=30)


@pytest.fixture
def start_console(transactional_db) -> Iterator[Callable[[], Console]]:
    """``start_console()`` runs ``manage.py console_run`` on a free port, its output in a
    log; every console started is killed with all its children at teardown."""
    started: list[Console] = []

    def start() -> Console:
        name = uuid.uuid4().hex[:10]
        port = free_port()
        log_path = worker_run_dir() / f"console-{name}.log"
        var_dir = worker_run_dir() / f"console-{name}"
        environment = worker_environment(
            base_url=f"http://127.0.0.1:{port}", env={"MIGRATION_VAR_DIR": var_dir}
        )
        manage = Path(settings.BASE_DIR) / "manage.py"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, str(manage), "console_run", "--port", str(port)],
                cwd=worker_run_dir(),
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started.append(Console(process=process, log_path=log_path, port=port))
        return started[-1]

    yield start
    for console in started:
        console.kill()


@dataclass(frozen=True)
class Stop:
    """How the console ended: when, with what status and output, and what it left behind."""

    took_s: float
    exit_status: int | None
    log: str
    # Processes of the children's groups still running once the supervisor had exited.
    left_running: list[str]
    # Until the zombies of killed processes were reaped by init and the groups were gone.
    groups_gone_s: float

    @property
    def worker_stopped_by(self) -> str | None:
        found = WORKER_LINE.search(self.log)
        return found["how"] if found else None


def console_stopped(console: Console, *, took_s: float) -> Stop:
    left = [member for member in group_members(console.pgids) if member.split()[1] != "Z"]
    began = time.monotonic()
    while group_members(console.pgids) and time.monotonic() < began + GROUPS_GONE_S:
        time.sleep(POLL_S)
    return Stop(
        took_s=took_s,
        exit_status=console.process.returncode,
        log=console.log(),
        left_running=left,
        groups_gone_s=round(time.monotonic() - began, 2),
    )


def assert_stopped_cleanly(stop: Stop, *, figures: str) -> None:
    """Exit 0 within the bound, one stop line per child, no traceback, nothing left."""
    figures = f"{figures}\n{stop.log[-5000:]}"
    assert stop.exit_status == 0, figures
    assert stop.took_s < STOP_BOUND_S, figures
    for line in STOP_LINES:
        assert stop.log.count(line) == 1, f"{line!r}: {figures}"
    assert "Traceback" not in stop.log, figures
    # Celery's own words for the stop are not printed besides the supervisor's line.
    assert "shutdown (MainProcess)" not in stop.log, figures
    assert stop.left_running == [], figures
    assert stop.groups_gone_s < GROUPS_GONE_S, figures


def test_ctrl_c_stops_web_server_worker_and_beat_within_10_s_every_time(start_console):
    moments = {"while starting": None, "at ready": 0.0, "1 s after ready": 1.0}
    stops: dict[str, Stop] = {}
    for moment, after_ready_s in moments.items():
        console = start_console()
        console.wait(ready=after_ready_s is not None)
        time.sleep(after_ready_s or 0)
        stops[moment] = console_stopped(console, took_s=console.interrupt())

    figures = figure(
        "console_run_ctrl_c",
        stop_s={moment: stop.took_s for moment, stop in stops.items()},
        max_stop_s=max(stop.took_s for stop in stops.values()),
        worker_stopped_by={moment: stop.worker_stopped_by for moment, stop in stops.items()},
        left_running=sum(len(stop.left_running) for stop in stops.values()),
        groups_gone_s=max(stop.groups_gone_s for stop in stops.values()),
    )
    for stop in stops.values():
        assert_stopped_cleanly(stop, figures=figures)


def test_second_ctrl_c_stops_at_once_and_cleanly(start_console):
    console = start_console()
    console.wait(ready=True)

    stop = console_stopped(console, took_s=console.interrupt(times=2, gap_s=0.2))

    figures = figure(
        "console_run_double_ctrl_c",
        stop_s=stop.took_s,
        worker_stopped_by=stop.worker_stopped_by,
        left_running=len(stop.left_running),
        groups_gone_s=stop.groups_gone_s,
    )
    assert_stopped_cleanly(stop, figures=figures)
    # SIGQUIT at the second Ctrl-C and SIGKILL a second later, not the warm shutdown's 8 s.
    assert stop.worker_stopped_by in ("cold shutdown", "killed"), figures
    assert stop.took_s < 4, figures


def test_a_child_that_dies_stops_the_others_and_fails_naming_it(start_console):
    console = start_console()
    console.wait(ready=True)

    os.kill(console.child("worker"), signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        console.process.wait(timeout=STOP_BOUND_S)
    stop = console_stopped(console, took_s=0)

    assert stop.exit_status == 1, stop.log[-5000:]
    assert "The worker stopped on its own (SIGKILL), so the console stopped." in stop.log
    assert stop.log.count("Stopped web server.") == stop.log.count("Stopped beat.") == 1
    assert "Stopped worker" not in stop.log
    assert stop.left_running == []
    assert stop.groups_gone_s < GROUPS_GONE_S
