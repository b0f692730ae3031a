"""Shared test helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def shared_data_dir() -> Path:
    """The read-only public datasets: `$STREAMS_SHARED_DATA`, else `shared/data` beside the repo."""
    override = os.environ.get("STREAMS_SHARED_DATA")
    return Path(override) if override else Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        # Failing, not skipping: CI always provides the data, so its absence is a setup error.
        pytest.fail(f"shared data not found at {path}; set STREAMS_SHARED_DATA")
    return path
