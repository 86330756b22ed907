"""``manage.py console_run [--host H] [--port P]``, the end of ``make run``: the web server,
a Celery worker and Celery beat, all stopped by one Ctrl-C. Why each step is there:

- Each child has a session of its own, so no signal reaches a process it was not meant for.
  The old ``kill 0`` hit the worker's pool processes too, which die on SIGTERM mid-task,
  and the worker's main process, in its warm shutdown, at times hung.
- From a terminal, the supervisor takes the foreground: Ctrl-C reaches it, not make, which
  then exits 0 without its "Interrupt" line.
- Stopping climbs a ladder per child, a rung at each deadline or further Ctrl-C. The worker:
  SIGTERM to its main process alone, Celery's warm shutdown (a running job releases its
  unsent chunks, the pool drains; idle, 2 to 3 s on Redis, 6 to 8 s on the filesystem
  broker, whose blocking 2 s poll runs twice), then SIGQUIT at ``WARM_S`` (cold shutdown)
  and SIGKILL to its group ``COLD_S`` later: 9 s at worst, inside the 10 s promised. The
  web server and beat have nothing to drain: SIGTERM to their group.
- Once a child's main process has exited, its group gets a SIGKILL: no pool process outlives it.
- A child that stops on its own stops the others, and the command fails naming it.
- Stopping prints one line per child. The worker's own "worker: Warm shutdown
  (MainProcess)" (Celery writes it to standard output, and has no setting to keep it quiet)
  is dropped on its way: the worker's standard output passes through the supervisor.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

POLL_S = 0.05
WARM_S = 8.0  # the worker's warm shutdown, before its cold one
COLD_S = 1.0  # the worker's cold shutdown, before SIGKILL
QUICK_S = 3.0  # the web server and beat, before SIGKILL

MSG_STOPPED = _("Stopped %(name)s.")
MSG_STOPPED_HOW = _("Stopped %(name)s (%(how)s, %(seconds).1f s).")
ERR_DIED = _("The %(name)s stopped on its own (%(status)s), so the console stopped.")
EXIT_STATUS = _("exit status %(code)s")
HOW = {
    signal.SIGTERM: _("warm shutdown"),
    signal.SIGQUIT: _("cold shutdown"),
    signal.SIGKILL: _("killed"),
}
# What Celery's worker prints when it is told to stop, which the supervisor's own line says.
CELERY_SHUTDOWN_LINE = re.compile(rb"worker: (Warm|Cold) shutdown \(MainProcess\)\r?\n?")

# A rung: the signal, the wait before the next rung, and whether to the whole group.
Rung = tuple[signal.Signals, float, bool]
QUICK: tuple[Rung, ...] = ((signal.SIGTERM, QUICK_S, True), (signal.SIGKILL, QUICK_S, True))
WORKER: tuple[Rung, ...] = (
    (signal.SIGTERM, WARM_S, False),
    (signal.SIGQUIT, COLD_S, False),
    (signal.SIGKILL, QUICK_S, True),
)


@dataclass
class Child:
    name: Promise
    command: list[str]
    ladder: tuple[Rung, ...]
    # Lines of its standard output not passed on (its own words for what we also say).
    dropped: re.Pattern[bytes] | None = None
    process: subprocess.Popen | None = None
    rung: int = -1
    stop_began: float = 0.0
    next_rung_at: float = 0.0

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 (our interpreter, our arguments)
            self.command,
            cwd=settings.BASE_DIR,
            start_new_session=True,
            stdout=subprocess.PIPE if self.dropped else None,
        )
        if self.dropped:
            threading.Thread(target=self._pass_on, daemon=True).start()

    def _pass_on(self) -> None:
        """Copy the child's standard output to ours, line by line, but the dropped lines."""
        out = sys.stdout.buffer
        with contextlib.suppress(OSError, ValueError):  # our output closed: nothing to do
            for line in iter(self.process.stdout.readline, b""):
                if not self.dropped.fullmatch(line):
                    out.write(line)
                    out.flush()

    def climb(self, now: float) -> None:
        """Send the next rung's signal (the top one again once there)."""
        if self.rung < 0:
            self.stop_began = now
        self.rung = min(self.rung + 1, len(self.ladder) - 1)
        sent, wait_s, to_group = self.ladder[self.rung]
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if to_group:
                os.killpg(self.process.pid, sent)
            else:
                self.process.send_signal(sent)
        self.next_rung_at = now + wait_s

    def has_exited(self) -> bool:
        """Whether the main process has exited; if so, SIGKILL what is left of its group."""
        if self.process.poll() is None:
            return False
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        return True

    def stopped_line(self, now: float) -> str:
        # The worker's line says how it stopped and how long it took; the others' only if
        # their first signal did not do.
        if self.ladder is not WORKER and self.rung == 0:
            return str(MSG_STOPPED % {"name": self.name})
        how = HOW[self.ladder[self.rung][0]]
        seconds = now - self.stop_began
        return str(MSG_STOPPED_HOW % {"name": self.name, "how": how, "seconds": seconds})


def console_children(*, host: str, port: int) -> list[Child]:
    manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
    celery = [sys.executable, "-m", "celery", "-A", "config"]
    schedule = f"--schedule={settings.VAR_DIR / 'celerybeat-schedule'}"
    return [
        Child(_("web server"), [*manage, "runserver", f"{host}:{port}", "--noreload"], QUICK),
        Child(
            _("worker"),
            [*celery, "worker", "--loglevel=INFO", "--concurrency=2"],
            WORKER,
            dropped=CELERY_SHUTDOWN_LINE,
        ),
        Child(_("beat"), [*celery, "beat", schedule, "--loglevel=INFO"], QUICK),
    ]


@contextlib.contextmanager
def terminal_foreground() -> Iterator[None]:
    """Be the terminal's foreground process group inside, if the caller's group was; give
    the terminal back after. SIGTTOU is ignored meanwhile, as tcsetpgrp() would stop us."""
    try:
        tty = os.open("/dev/tty", os.O_RDWR)
    except OSError:  # no controlling terminal
        yield
        return
    previous, hush = os.tcgetpgrp(tty), signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    taken = previous == os.getpgrp()
    with contextlib.suppress(OSError):
        if taken:
            os.setpgid(0, 0)
            os.tcsetpgrp(tty, os.getpgrp())
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            if taken:
                os.tcsetpgrp(tty, previous)
        signal.signal(signal.SIGTTOU, hush)
        os.close(tty)


class Command(BaseCommand):
    help = "Run the web server, a Celery worker and Celery beat until Ctrl-C stops them all."
    requires_system_checks: list[str] = []  # runserver runs them

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="Default 127.0.0.1.")
        parser.add_argument("--port", type=int, default=8000, help="Default 8000.")

    def handle(self, *args, host: str, port: int, **options):
        self.interrupts = 0
        # SIGHUP too: the children have left the terminal's session, so closing the
        # terminal would not stop them.
        for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(number, self.interrupted)
        children = console_children(host=host, port=port)
        with terminal_foreground():
            for child in children:
                child.start()
            died: Child | None = None
            while not (self.interrupts or died):  # until Ctrl-C or a child stops on its own
                time.sleep(POLL_S)
                died = next((child for child in children if child.has_exited()), None)
            self.stop([child for child in children if child is not died])
        if died:
            code = died.process.returncode
            status = signal.Signals(-code).name if code < 0 else EXIT_STATUS % {"code": code}
            raise CommandError(ERR_DIED % {"name": died.name, "status": status})

    def interrupted(self, number: int, frame: FrameType | None) -> None:
        self.interrupts += 1

    def stop(self, children: list[Child]) -> None:
        """Climb every child's ladder until all have exited; each interrupt after the one
        that began the stop climbs a rung at once."""
        handled = min(self.interrupts, 1)
        running = list(children)
        for child in running:
            child.climb(time.monotonic())
        while running:
            time.sleep(POLL_S)
            now = time.monotonic()
            hurry, handled = self.interrupts > handled, self.interrupts
            for child in list(running):
                if child.has_exited():
                    running.remove(child)
                    with contextlib.suppress(OSError):  # the terminal may be gone
                        self.stdout.write(child.stopped_line(now))
                elif hurry or now >= child.next_rung_at:
                    child.climb(now)
