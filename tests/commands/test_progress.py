"""Long commands show their progress on a terminal, and stay quiet elsewhere."""

from io import StringIO

from django.core.management.base import OutputWrapper

from customers.management import progress
from customers.management.progress import TerminalProgress


class Terminal(StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_sees_done_rate_and_time_left(monkeypatch):
    out = Terminal()
    clock = iter([0.0, 1.0, 2.0])
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    shown = TerminalProgress(OutputWrapper(out), total=1000, noun="customers checked")

    shown.update(100)
    shown.update(300)
    shown.finish()

    text = out.getvalue()
    assert "\r100/1,000 customers checked, 100/s, about 9 s left" in text
    assert "\r300/1,000 customers checked, 150/s, about 5 s left" in text
    assert text.endswith("\r")


def test_a_log_or_a_pipe_sees_nothing():
    out = StringIO()
    shown = TerminalProgress(OutputWrapper(out), total=10, noun="customers checked")

    shown.update(5)
    shown.finish()

    assert out.getvalue() == ""
