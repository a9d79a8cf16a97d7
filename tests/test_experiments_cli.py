"""`keras-convnets experiment`: the CLI end to end, and its errors."""

from __future__ import annotations

import json

from conftest import assert_one_line_error, cli_in_process, run_cli


def test_cli_runs_gradients_quick(tmp_path):
    result = run_cli(
        "experiment", "gradients", "--quick", "--out", tmp_path, check=True
    )
    assert "results.json" in result.stdout
    saved = json.loads((tmp_path / "gradients" / "results.json").read_text())
    assert saved["quick"] is True and saved["max_abs_error"] < 1e-5


def test_cli_unknown_experiment_is_one_line_error(tmp_path):
    result = cli_in_process("experiment", "no-such-thing", "--out", tmp_path)
    assert_one_line_error(result, "invalid choice")


def test_cli_help_lists_experiments():
    result = cli_in_process("experiment", "--help")
    assert result.returncode == 0, result.stderr
    assert "gradients" in result.stdout and "example" in result.stdout
