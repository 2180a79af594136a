"""Hypothesis profiles: "ci" (default, small and quick) and "thorough" (HYPOTHESIS_PROFILE=thorough);
DEEPNUM_REQUIRE_GPU=1|emulated turns a skipped gpu (and emulated) test into a failure."""
import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=20, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("thorough", max_examples=300, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


# DEEPNUM_REQUIRE_GPU=1 (tools/gpu-check.sh on a GPU) or =emulated (the emulated CI job): a CUDA device is
# expected, so a test marked ``gpu`` (with =emulated also ``emulated``) that skips (no device, a driver mismatch,
# a module that did not import) fails instead.
REQUIRE_GPU = os.environ.get("DEEPNUM_REQUIRE_GPU", "")
REQUIRED_MARKS = {"1": ("gpu",), "emulated": ("gpu", "emulated")}.get(REQUIRE_GPU, ())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and any(item.get_closest_marker(m) is not None for m in REQUIRED_MARKS):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"DEEPNUM_REQUIRE_GPU={REQUIRE_GPU} but this test skipped: {reason}"
