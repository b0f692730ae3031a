"""Headless Chromium for the integration tests that drive a real browser (playwright)."""

from __future__ import annotations

import os
import shutil
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def require_chromium() -> str:
    """The browser's path; without one a test fails in CI (which installs it) and is skipped elsewhere."""
    if CHROMIUM is None:
        message = "chromium not installed (apt-get install chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


def launch(playwright: Any) -> Any:
    return playwright.chromium.launch(
        executable_path=require_chromium(),
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            "--disable-component-update",
            "--disable-sync",
        ],
    )
