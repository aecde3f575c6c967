"""Every optimizer, flag combination, dtype and layout: bitwise what main computed.

tests/data/golden.npz was recorded with a wheel of main (`python tools/golden.py
record --out tests/data/golden.npz`, run from outside the source tree). A
change that alters any result by one bit, or adds or drops a state entry,
fails here with the keys that differ. If a change of results is intended,
record the file again and say why in the commit.
"""

import golden_cases
import pytest


@pytest.fixture(scope="module")
def golden():
    return golden_cases.load()


@pytest.mark.parametrize("case", list(golden_cases.CASES))
def test_matches_golden(case, golden):
    """All runs of the case, on 1 and 2 threads (compute_case checks that they agree)."""
    prefix = case + "/"
    lines = golden_cases.differences(golden, golden_cases.compute_case(case), prefix)
    assert not lines, "\n".join(lines)


def test_golden_has_no_unknown_cases(golden):
    """A case dropped from golden_cases.CASES would otherwise go unchecked."""
    runs = {run for case in golden_cases.CASES for run in golden_cases.run_names(case)}
    unknown = sorted({golden_cases.split_key(key)[0] for key in golden} - runs)
    assert not unknown, f"golden.npz has results for unknown runs: {unknown[:5]}"
