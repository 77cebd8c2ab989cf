"""A native crash in a test marked ``native`` is one failed test with its stack; the suite goes on."""

from __future__ import annotations

import re

import pytest

CRASHING_SUITE = """
import ctypes
import pytest

@pytest.fixture(scope="session")
def shared_resource():
    return {"opened": True}

def test_before(shared_resource):
    assert shared_resource["opened"]

@pytest.mark.native
def test_engine_segfaults(shared_resource):
    ctypes.string_at(0)  # reads address 0: SIGSEGV, as a miscompiled engine does

@pytest.mark.native
def test_engine_fails_normally():
    assert 1 + 1 == 3

@pytest.mark.native
def test_engine_passes(shared_resource):
    assert shared_resource["opened"]

def test_after(shared_resource):
    assert shared_resource["opened"]
"""


def test_a_segfaulting_native_test_is_one_failure_and_the_run_goes_on(pytester: pytest.Pytester):
    pytester.makepyfile(test_engines=CRASHING_SUITE)
    result = pytester.runpytest_subprocess("-p", "ctistudio.testing.isolation", "-p", "no:cacheprovider", "-rf")
    result.assert_outcomes(passed=3, failed=2)
    text = result.stdout.str()
    assert "test_engine_segfaults: the test process crashed with signal 11 (SIGSEGV)" in text
    # faulthandler's stack of the crashing thread, down to the test's own line
    assert "Fatal Python error: Segmentation fault" in text
    assert re.search(r'test_engines\.py", line \d+ in test_engine_segfaults', text)
    assert "assert (1 + 1) == 3" in text  # an ordinary failure in a child keeps pytest's own report
    assert "short test summary info" in text  # the summary was printed: the run ended normally
