"""The worker profile's summary from py-spy's raw stacks."""

from __future__ import annotations

from pathlib import Path

from streams.bench.profile import summarize


def test_garbage_lines_of_a_nonblocking_sample_are_left_out(tmp_path: Path) -> None:
    raw = tmp_path / "profile.raw"
    raw.write_bytes(
        b"run (streams/live/loop.py:10);process_batch (streams/core/processor.py:20) 3\n"
        b"run (streams/live/loop.py:10);poll (site-packages/x.py:5) 1\n"
        b"(\xe7\x8d\x80\xee\xbf\x85\x00\x01\x00\xff\n"  # a stack read while it changed
        b"\n"
    )
    out = tmp_path / "profile.txt"
    summarize(raw, out)
    text = out.read_text()
    assert text.startswith("4 samples of the worker at maximum rate (1 unreadable lines left out)")
    assert "75.0%  process_batch (streams/core/processor.py:20)" in text
    assert "100.0%  run (streams/live/loop.py:10)" in text
