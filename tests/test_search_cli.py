"""`keras-convnets search` as a subprocess on a tiny real subset, and its user errors."""

from __future__ import annotations

import csv
import json
import os

from conftest import run_cli
from keras_convnets.search.genotype import load_genotype

# Tiny sizes; otherwise the defaults: each trial in its own process, graph mode.
TINY = (
    "--blocks", "1", "--cells", "0", "--filters", "4", "--proxy-epochs", "1",
    "--proxy-fraction", "0.185", "--batch-size", "100",
)  # fmt: skip


def test_search_help_has_examples(capsys):
    from keras_convnets.cli import main

    try:
        main(["search", "--help"])
    except SystemExit as e:
        assert e.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "--tuner-id chief" in out
    for group in ("search space:", "proxy task:", "distributed"):
        assert group in out


def test_search_cli_end_to_end(tmp_path, small_fashion_dir, capsys):
    args = (
        "search", "--tuner", "evolution", "--max-trials", "1",
        "--data-dir", small_fashion_dir, "--directory", tmp_path, "--project", "cli",
        *TINY,
    )  # fmt: skip
    result = run_cli(*args, check=True)
    project = tmp_path / "cli"
    assert "Best trial:" in result.stdout
    assert f"--genotype {project / 'best_genotype.json'}" in result.stdout
    assert load_genotype(str(project / "best_genotype.json")).blocks == 1
    with open(project / "trials.csv") as f:
        assert [r["status"] for r in csv.DictReader(f)] == ["COMPLETED"]
    assert os.path.exists(project / "summary.md")
    # The trial ran in a process of its own, which wrote the checkpoint.
    (run,) = json.loads((project / "trial_0" / "runs.json").read_text())
    assert run["trial_process"]["pid"] not in (run["pid"], os.getpid())
    assert run["trial_process"]["cpu_s"] > 0
    assert os.path.getsize(project / "trial_0" / "checkpoint.weights.h5") > 0

    # the same project with another search space: one clear line, exit 2
    changed = [str(a) if a != "1" else "2" for a in args]  # --blocks 2, ...
    code, line = _main(capsys, *changed)
    assert code == 2 and "differs in: blocks" in line and "--overwrite" in line


def _main(capsys, *args):
    """Runs the CLI in-process (user errors need no subprocess): code, error line."""
    from keras_convnets.cli import main

    try:
        code = main([str(a) for a in args])
    except SystemExit as e:  # argparse errors
        code = e.code
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("keras-convnets search: error:"), lines
    return code, lines[0]


def test_search_user_errors(tmp_path, capsys):
    common = ("search", "--directory", tmp_path)
    cases = [
        (("--proxy-fraction", "2"), "proxy_fraction"),
        (("--tuner", "grid"), "invalid choice"),
        (("--tuner-id", "worker0"), "oracle address"),
        (("--tuner-id", "chief", "--oracle-address", "host"), "HOST:PORT"),
        (("--augment", "nope"), "augment"),
        (("--filters", "8,x"), "list of ints"),
        (("--config", tmp_path / "missing.yaml"), "missing.yaml"),
    ]
    for flags, fragment in cases:
        code, line = _main(capsys, *common, *flags)
        assert code == 2 and fragment in line, (flags, line)
