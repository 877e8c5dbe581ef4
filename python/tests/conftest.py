"""Shared fixtures: the command-line tool the Python results are compared
with (built by `cargo test --release` before pytest runs in scripts/test),
and the shipped example log."""

import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def cli() -> str:
    exe = os.environ.get("GPUBOUND_BIN", str(ROOT / "target" / "release" / "gpubound"))
    assert os.access(exe, os.X_OK), f"build the CLI first (cargo build --release): {exe}"
    return exe


@pytest.fixture(scope="session")
def example() -> pathlib.Path:
    return ROOT / "data" / "exploding_bandit.jsonl"


@pytest.fixture(scope="session")
def simulated(cli, tmp_path_factory) -> pathlib.Path:
    """A simulated log: 40 episodes of the paper's bandit, Boltzmann agent."""
    out = tmp_path_factory.mktemp("sim") / "sim.jsonl"
    subprocess.run(
        [cli, "simulate", "--episodes", "40", "--agent", "boltzmann", "--seed", "5",
         "-q", "-o", str(out)],
        check=True,
    )
    return out
