"""SR-GNN session files: parsing, prefix augmentation and the validation split."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from streams.model.sessions import augment, read_prefix_targets, read_sessions, split_validation


def test_read_sessions_plain_and_gzip_keep_ids_as_strings(tmp_path: Path) -> None:
    text = "1 2 2\n\n007 10\n"
    (tmp_path / "s.txt").write_text(text)
    with gzip.open(tmp_path / "s.txt.gz", "wt") as handle:
        handle.write(text)
    expected = [["1", "2", "2"], ["007", "10"]]  # blank line skipped, leading zero kept
    assert read_sessions(tmp_path / "s.txt") == expected
    assert read_sessions(tmp_path / "s.txt.gz") == expected


def test_read_prefix_targets(tmp_path: Path) -> None:
    path = tmp_path / "c.tsv"
    path.write_text("1 2 3\t4\n5\t6\n")
    assert read_prefix_targets(path) == [(["1", "2", "3"], "4"), (["5"], "6")]


@pytest.mark.parametrize("line", ["1 2 3", "\t4", "1 2\t3 4"])
def test_read_prefix_targets_rejects_malformed_lines(tmp_path: Path, line: str) -> None:
    path = tmp_path / "bad.tsv"
    path.write_text(f"1\t2\n{line}\n")
    with pytest.raises(ValueError, match=r"bad\.tsv:2"):
        read_prefix_targets(path)


def test_augment_longest_prefix_first_and_skips_single_clicks() -> None:
    sessions = [["a", "b", "c", "d"], ["z"], ["x", "x"]]
    assert augment(sessions) == [
        (["a", "b", "c"], "d"),
        (["a", "b"], "c"),
        (["a"], "b"),
        (["x"], "x"),
    ]


def test_split_validation_holds_out_the_tail() -> None:
    sessions = [[str(i)] for i in range(25)]
    train, valid = split_validation(sessions)
    assert train == sessions[:22] and valid == sessions[22:]  # 2.5 rounds up, whatever its parity
    train, valid = split_validation(sessions, fraction=0.2)
    assert (len(train), len(valid)) == (20, 5)
    assert valid[-1] == sessions[-1]


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1])
def test_split_validation_rejects_degenerate_fractions(fraction: float) -> None:
    with pytest.raises(ValueError):
        split_validation([["a"]], fraction)


def test_real_files_match_the_srgnn_counts(shared_data: Path) -> None:
    folder = shared_data / "diginetica-srgnn"
    train = read_sessions(folder / "train_sessions.txt.gz")
    assert len(train) == 186_670
    assert len(augment(train)) == 719_470
    # The official cases are exactly the augmentation of the test sessions, in order.
    assert augment(read_sessions(folder / "test_sessions.txt.gz")) == read_prefix_targets(
        folder / "test_prefix_target.tsv.gz"
    )
