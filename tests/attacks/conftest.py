"""Fixtures of the attacks' tests."""

import numpy as np
import pytest
from reference_arrays import fixed_arrays


@pytest.fixture(scope="module")
def audited():
    rng = np.random.default_rng(0)
    member = np.arange(60) % 2 == 0
    score, ref, inside = fixed_arrays(60, rng, member=member)
    return score, ref, inside, member.astype(int)


@pytest.fixture(scope="module")
def population():
    rng = np.random.default_rng(1)
    score, ref, _ = fixed_arrays(80, rng, member=np.zeros(80, dtype=bool))
    return score, ref, np.zeros_like(ref, dtype=bool)  # in no reference model
