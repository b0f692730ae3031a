"""`streams worker` refuses a rules file with a bad segment before it touches the broker."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from streams.cli import _register, app


def test_a_bad_segment_rule_stops_the_worker_with_its_id(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('[[segments]]\nid = "big_carts"\nwhen = "cart_valeu > 100"\n')
    _register()
    # An unreachable broker: the worker must stop on the rules before it tries to connect.
    result = CliRunner().invoke(app, ["worker", "--rules", str(rules), "--bootstrap", "127.0.0.1:1"])
    assert result.exit_code == 2
    assert "segment big_carts: unknown name(s) cart_valeu" in result.output
