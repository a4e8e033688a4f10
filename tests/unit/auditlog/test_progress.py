"""Progress of the long commands: on stderr while stderr is a terminal, nothing with --quiet or in a pipe."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from auditlog.cli import count_lines
from auditlog.progress import CommandProgress, waiting


def _terminal(buffer: io.StringIO) -> Console:
    return Console(file=buffer, force_terminal=True, width=120)


def test_a_known_total_draws_a_bar_with_the_count_and_the_rate():
    out = io.StringIO()
    with CommandProgress("emitting events", 5000, console=_terminal(out)) as progress:
        for _ in range(5000):
            progress.advance()
    drawn = out.getvalue()
    assert "emitting events" in drawn and "5000/5000" in drawn
    assert re.search(r"5000/5000\S* \S*[0-9][0-9,]*/s", drawn), drawn  # the final line has a measured rate
    assert progress.done == 5000


def test_an_unknown_total_draws_a_running_count_with_the_rate():
    out = io.StringIO()
    with CommandProgress("replaying dead letters", console=_terminal(out)) as progress:
        progress.update(1234)
    drawn = out.getvalue()
    assert "replaying dead letters" in drawn and "1,234" in drawn and "/s" in drawn


def test_the_total_can_be_corrected_while_it_runs():
    out = io.StringIO()
    with CommandProgress("replaying spooled events", 10, console=_terminal(out)) as progress:
        progress.update(12, 12)
    assert "12/12" in out.getvalue()


@pytest.mark.parametrize(("quiet", "terminal"), [(True, True), (False, False), (True, False)])
def test_quiet_or_not_a_terminal_draws_nothing_but_still_counts(quiet, terminal):
    out = io.StringIO()
    console = Console(file=out, force_terminal=terminal)
    with CommandProgress("emitting events", 100, quiet=quiet, console=console) as progress:
        progress.advance(100)
    with waiting("starting Kafka", quiet=quiet, console=console):
        pass
    assert out.getvalue() == ""
    assert progress.done == 100


def test_progress_goes_to_stderr_and_stdout_stays_the_result(capsys, monkeypatch):
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # Rich: treat the captured stderr as a terminal
    lines = [b"{}\n"] * 300
    assert list(count_lines(lines, "exporting log lines", False)) == lines
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "exporting log lines" in captured.err and "300" in captured.err


def test_quiet_keeps_stderr_empty_even_on_a_terminal(capsys, monkeypatch):
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    assert len(list(count_lines([b"x\n"] * 10, "verifying log lines", True))) == 10
    assert capsys.readouterr().err == ""


def test_stderr_that_is_not_a_terminal_stays_empty(capsys, monkeypatch):
    monkeypatch.setenv("TTY_COMPATIBLE", "0")
    assert len(list(count_lines([b"x\n"] * 10, "verifying log lines", False))) == 10
    assert capsys.readouterr().err == ""


def test_a_result_printed_while_progress_is_drawn_still_goes_to_stdout(capsys, monkeypatch):
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    with waiting("verifying the stored log"):
        print("verified: 12 leaves")
    with CommandProgress("exporting log lines") as progress:
        print("wrote 1 line")
        progress.advance()
    captured = capsys.readouterr()
    assert captured.out == "verified: 12 leaves\nwrote 1 line\n"
    assert "verified" not in captured.err and "exporting log lines" in captured.err
