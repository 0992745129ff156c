"""Shared test helpers."""

from __future__ import annotations

import os

import pytest
import torch

# Small models train fastest on one thread; keeps CI times predictable.
torch.set_num_threads(1)
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture()
def breast_cancer():
    from learnact.data import load_dataset

    return load_dataset("breast_cancer")
