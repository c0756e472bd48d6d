"""The benchmarks' own set-ups: the emulator configuration they write, the other host."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bench.capacity import MODEL, WHOLE_PACK_FAULTS, emulator_toml
from bench.workers import VICTIM_HOST, other_host_prefix
from sandbox.gemini.config import load_config
from sandbox.gemini.scenario import Scenario, key_fp


def test_emulator_toml_extra_keys_share_one_project_and_scripts_run_in_order(
    tmp_path: Path,
) -> None:
    text = emulator_toml(
        {"whole": 8, "free": None},
        None,
        extra_keys={"whole": ["whole-victim-key"]},
        scripts={"whole": WHOLE_PACK_FAULTS},
    )
    path = tmp_path / "emulator.toml"
    path.write_text(text)
    config = load_config(path)
    assert config.keys["whole-key"].project == config.keys["whole-victim-key"].project == "whole"
    assert config.limits("whole", MODEL).rpd == 8
    assert config.limits("free", MODEL).rpd == config.default_limits.rpd
    scenario = Scenario(seed=1)
    scenario.apply(config.scenario)
    fp = key_fp("free-key")
    assert scenario.draw(fp, MODEL, "free") is None  # another project: normal answers
    fp = key_fp("whole-key")
    drawn = [scenario.draw(fp, MODEL, "whole") for _ in range(len(WHOLE_PACK_FAULTS) + 1)]
    assert [o.kind if o else None for o in drawn] == [*WHOLE_PACK_FAULTS, None]


def test_the_other_host_prefix_runs_a_command_under_another_host_name() -> None:
    prefix = other_host_prefix()
    if prefix is None:
        pytest.skip("unshare --uts is not available on this machine")
    out = subprocess.run([*prefix, "hostname"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0
    assert out.stdout.strip() == VICTIM_HOST
    here = subprocess.run(["hostname"], capture_output=True, text=True, timeout=10)
    assert here.stdout.strip() != VICTIM_HOST  # the name is the child's alone
