"""The user documentation names only files, make targets and commands that exist, and no history."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "models/onnx/README.md"]
HISTORY = re.compile(r"\b[Ss]ession [0-9]|\bissue #?[0-9]|until recently")
# Written by the commands, never committed: a page may name them without them being there.
GENERATED = (".venv", ".cache", "build/")
PLACEHOLDER = re.compile(r"[<>*…{}$]|\b(FILE|DIR|LOG|PATH)\b|\.\.\.")
PATH_LIKE = re.compile(r"^\.?[A-Za-z0-9_][A-Za-z0-9_.\-]*(/[A-Za-z0-9_.\-]+)*/?$")
TOP_LEVEL = {"Makefile", "Dockerfile", "docker-compose.yml", "pyproject.toml", "README.md"}


def _ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(ROOT)) for p in paths]


def _candidates(text: str) -> set[str]:
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    code = re.findall(r"`([^`\n]+)`", text)
    return {c.split("#")[0].split(":")[0] for c in links} | {c.strip() for c in code}


def _is_repo_path(token: str) -> bool:
    if token in TOP_LEVEL or token == ".ci/run":
        return True
    if "://" in token or token.startswith(("/", "../", "~")) or " " in token or PLACEHOLDER.search(token):
        return False
    if not PATH_LIKE.match(token) or "/" not in token:
        return False
    # A path names a file with an extension or a folder (ends with /, or is a known top folder).
    first = token.split("/")[0]
    return (ROOT / first).exists() or token.startswith(GENERATED)


def _exists(token: str, doc: Path) -> bool:
    if token.startswith(GENERATED):
        return True
    return (ROOT / token).exists() or (doc.parent / token).exists()


@pytest.mark.parametrize("doc", DOCS, ids=_ids(DOCS))
def test_named_paths_exist(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    missing = sorted(t for t in _candidates(text) if _is_repo_path(t) and not _exists(t, doc))
    assert not missing, f"{doc.name} names files that do not exist: {missing}"


def _make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([A-Za-z][A-Za-z0-9_-]*):", text, re.MULTILINE))


@pytest.mark.parametrize("doc", DOCS, ids=_ids(DOCS))
def test_make_targets_exist(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    # Commands are written as code (`make demo`, or a line of a code block), not prose ("make a").
    code = re.findall(r"`([^`\n]+)`", text) + re.findall(r"```[a-z]*\n(.*?)```", text, re.DOTALL)
    named = {target for span in code for target in re.findall(r"\bmake ([a-z][a-z0-9_-]*)", span)}
    missing = sorted(named - _make_targets())
    assert not missing, f"{doc.name} names make targets not in the Makefile: {missing}"


def _cli() -> Any:
    """The CLI as a click group (typer's, which need not be the installed click's class)."""
    from streams.cli import _register, app

    _register()
    command = typer.main.get_command(app)
    assert hasattr(command, "commands"), command
    return command


@pytest.mark.parametrize("doc", DOCS, ids=_ids(DOCS))
def test_streams_commands_exist(doc: Path) -> None:
    root = _cli()
    text = doc.read_text(encoding="utf-8")
    missing = []
    for first, second in re.findall(r"\bstreams ([a-z][a-z0-9-]*)(?:[ |/`]+([a-z][a-z0-9-]*))?", text):
        command = root.commands.get(first)
        if command is None:
            missing.append(first)
        # "streams kafka up|down|status": every name after a group is one of its commands.
        elif hasattr(command, "commands") and second and second not in {*command.commands, "and", "or"}:
            missing.append(f"{first} {second}")
    assert not missing, f"{doc.name} names streams commands the CLI does not have: {sorted(set(missing))}"


def test_readme_is_short() -> None:
    size = len((ROOT / "README.md").read_bytes())
    assert size < 12 * 1024, size


@pytest.mark.parametrize("doc", DOCS, ids=_ids(DOCS))
def test_no_development_history(doc: Path) -> None:
    hits = [line for line in doc.read_text(encoding="utf-8").splitlines() if HISTORY.search(line)]
    assert not hits, hits
