"""A long command's progress on a terminal: one line redrawn in place with what is done,
the rate and the time left; nothing at all when the output is not a terminal (a log, a
pipe), where the command's final line says what happened."""

from __future__ import annotations

import time

# The line is redrawn at most this often.
REDRAW_S = 0.5


class TerminalProgress:
    """``update(done)`` as work advances, ``finish()`` at the end (clears the line)."""

    def __init__(self, stream, *, total: int, noun: str) -> None:
        self.stream = stream
        self.total = total
        self.noun = noun
        self.is_shown = bool(getattr(stream, "isatty", lambda: False)())
        self.started = time.monotonic()
        self.drawn_at = 0.0
        self.width = 0

    def line(self, done: int, now: float) -> str:
        elapsed = max(now - self.started, 1e-6)
        rate = done / elapsed
        text = f"{done:,}/{self.total:,} {self.noun}, {rate:,.0f}/s"
        if 0 < done < self.total and rate > 0:
            text += f", about {round((self.total - done) / rate):,} s left"
        return text

    def update(self, done: int) -> None:
        now = time.monotonic()
        if not self.is_shown or now - self.drawn_at < REDRAW_S:
            return
        self.drawn_at = now
        text = self.line(done, now)
        self.stream.write("\r" + text.ljust(self.width), ending="")
        self.stream.flush()
        self.width = len(text)

    def finish(self) -> None:
        if self.is_shown and self.width:
            self.stream.write("\r" + " " * self.width + "\r", ending="")
            self.stream.flush()
