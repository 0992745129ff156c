"""Fixtures for the experiment tests."""

from __future__ import annotations

import pytest
from experiment_helpers import tiny_raw

from learnact.experiment.grid import study_from_dict


@pytest.fixture()
def tiny_study():
    """Two variants x two seeds, 3 epochs each (4 runs, well under a second)."""
    return study_from_dict(tiny_raw())
