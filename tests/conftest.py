"""Shared fixtures: the ../shared reference folder (skipped when absent) and small models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from predict_helpers import scene

import hydranet

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HYDRANET_SHARED", REPO.parent / "shared"))
PARITY = SHARED / "reference" / "official-parity"
CAMVID = SHARED / "data" / "camvid"
EXAMPLES = SHARED / "data" / "official-examples"


# CI sets HYDRANET_REQUIRE_SHARED=1 when ../shared is beside the clone: then a test that needs
# it must run, and a missing file is a failure (a wrong path), not a silent skip.
REQUIRE_SHARED = os.environ.get("HYDRANET_REQUIRE_SHARED") == "1"
SHARED_SKIP = "the reference data lives in ../shared beside the clone"


def _require(path: Path) -> Path:
    if not path.exists():
        message = f"{path} is absent ({SHARED_SKIP})"
        if REQUIRE_SHARED:
            pytest.fail(message + "; HYDRANET_REQUIRE_SHARED=1 says it must be there")
        pytest.skip(message)
    return path


def require_shared(path: Path) -> Path:
    """``path`` inside ../shared, or a skip (a failure under HYDRANET_REQUIRE_SHARED=1)."""
    return _require(path)


def pytest_sessionfinish(session, exitstatus):  # noqa: ARG001
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = [r for r in (reporter.stats.get("skipped", []) if reporter else [])
               if "../shared" in str(r.longrepr)]
    if REQUIRE_SHARED and skipped:
        reporter.write_line(f"{len(skipped)} test(s) needing ../shared were skipped although "
                            "HYDRANET_REQUIRE_SHARED=1", red=True)
        session.exitstatus = 1
