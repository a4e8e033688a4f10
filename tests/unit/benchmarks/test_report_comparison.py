"""make bench prints every figure next to the reference run's."""

from __future__ import annotations

from benchmarks.report import comparison, figures


def test_every_number_is_a_figure_by_its_path_except_how_it_was_taken():
    run = {"date": "d", "events": 10, "ch_pages": {"rare actor": {"warm": {"p99_ms": 29.0, "n": 100}}},
           "api_load": {"pool": {"requests_per_s": 63.6, "concurrency": 32, "ok": True}}}
    assert figures(run) == {"events": 10.0, "ch_pages/rare actor/warm/p99_ms": 29.0,
                            "api_load/pool/requests_per_s": 63.6}


def test_each_figure_is_printed_next_to_the_reference_and_what_was_not_measured_is_named():
    then = {"date": "then", "command": "make bench", "ch_pages": {"rare actor": {"warm": {"p99_ms": 29.0}}},
            "questions": {"tokens": {"ch_ms": 4.4}}}
    now = {"ch_pages": {"rare actor": {"warm": {"p99_ms": 14.5}}}, "new": {"x": 1}}
    text = comparison(now, then)
    assert "| ch_pages/rare actor/warm/p99_ms | 29.0 | 14.5 | 0.50 |" in text
    assert "new/x" not in text  # nothing to compare it with
    assert "Not measured in this run (1): questions/tokens/ch_ms" in text
