"""Operator commands that need no broker: `streams rules check`, and `streams model swap`'s refusals."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from streams.cli import _register, app


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    _register()
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.output


def test_a_good_rules_file_is_summarised(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(
        'top_n = 5\nenabled_triggers = ["cart_abandonment"]\n'
        '[[segments]]\nid = "big_carts"\nwhen = "cart_value > 100"\n'
    )
    code, output = run("rules", "check", str(rules))
    assert code == 0, output
    assert f"{rules}: ok" in output
    assert "triggers: cart_abandonment" in output
    assert "segments: big_carts" in output
    assert "top_n = 5" in output


def test_a_bad_segment_is_named(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('[[segments]]\nid = "big_carts"\nwhen = "cart_valeu > 100"\n')
    code, output = run("rules", "check", str(rules))
    assert code == 2
    assert "segment big_carts: unknown name(s) cart_valeu" in output


def test_an_unknown_setting_and_a_missing_file_are_refused(tmp_path: Path) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text('{"top_m": 5}')
    code, output = run("rules", "check", str(rules))
    assert code == 2 and "top_m" in output
    code, output = run("rules", "check", str(tmp_path / "absent.toml"))
    assert code == 2 and "no such file" in output


def test_a_model_swap_needs_the_api_token(tmp_path: Path) -> None:
    code, output = run("model", "swap", str(tmp_path), env={"STREAMS_API_TOKEN": ""})
    assert code == 2 and "token" in output


def test_a_model_swap_says_which_worker_did_not_answer(tmp_path: Path) -> None:
    code, output = run("model", "swap", str(tmp_path), "--worker", "http://127.0.0.1:1", "--token", "t")
    assert code == 1 and "http://127.0.0.1:1: no answer" in output
