"""Seeded mutations of images, videos, weights and configs: read, or refused with one hydranet line."""

from __future__ import annotations

import importlib.util
from pathlib import Path

spec = importlib.util.spec_from_file_location("fuzz", Path(__file__).resolve().parents[1] / "tools" / "fuzz.py")
fuzz = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fuzz)


def test_three_hundred_mutated_inputs_are_read_or_refused_in_one_line(tmp_path):
    problems = fuzz.run(300, seed=1, folder=tmp_path)
    assert not problems, "\n".join(problems[:10])


def test_the_mutator_really_breaks_inputs(tmp_path):
    # A fuzzer whose mutations are all harmless would pass anything: most cases must be refused.
    base = fuzz.seeds(tmp_path)
    import numpy as np

    from hydranet.errors import HydranetError
    from hydranet.training.config import load_config

    refused = 0
    rng = np.random.default_rng(0)
    for i in range(30):
        path = tmp_path / f"c{i}.yaml"
        path.write_bytes(fuzz._flip(base["config"], rng, 8))
        try:
            load_config(path)
        except HydranetError:
            refused += 1
    assert refused >= 20
