"""Training engines: turn run configs into trained models.

An engine is ``(runs, splits) -> iterator of TrainedRun`` in any order. The
sequential engine calls the reference trainer once per run; it is the
reference every other engine must match.
"""

from __future__ import annotations

import resource
from collections.abc import Callable, Iterator, Mapping, Sequence

from ..config import RunConfig
from ..data import Split, load_dataset, split_dataset
from ..store import RunArtifacts
from ..model import MLP, init_parameters_
from ..training import fit, run_generator
from .artifacts import TrainedRun, build_artifacts

__all__ = [
    "Engine",
    "ENGINES",
    "build_model",
    "train_one",
    "sequential_engine",
    "peak_memory_mb",
    "split_key",
    "prepare_splits",
    "train_group",
]

Engine = Callable[[Sequence[RunConfig], Mapping[tuple, Split]], Iterator[TrainedRun]]


def split_key(run: RunConfig) -> tuple:
    """Key of the data split a run uses (data settings and seed)."""
    return (run.data.dataset, run.data.target, run.data.test_size, run.data.val_size, run.seed)


def prepare_splits(runs: Sequence[RunConfig]) -> dict[tuple, Split]:
    """Load each data set once and split it for every seed the runs need."""
    datasets = {}
    splits: dict[tuple, Split] = {}
    for run in runs:
        key = split_key(run)
        if key in splits:
            continue
        dkey = (run.data.dataset, run.data.target)
        if dkey not in datasets:
            datasets[dkey] = load_dataset(run.data.dataset, run.data.target)
        splits[key] = split_dataset(datasets[dkey], run.seed, run.data.test_size, run.data.val_size)
    return splits


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def build_model(run: RunConfig, split: Split) -> MLP:
    """The run's backbone with PyTorch-default initial values drawn from ``run.seed``.

    Returns the model and leaves the run's generator state implied: use
    :func:`train_one` to train with the matching shuffling stream.
    """
    out = 1 if split.n_classes == 2 else split.n_classes
    return MLP(split.n_features, run.backbone.hidden, out, run.activation)


def train_one(run: RunConfig, split: Split) -> TrainedRun:
    """Build, initialise (seeded) and train one run with the reference trainer."""
    generator = run_generator(run.seed)
    model = init_parameters_(build_model(run, split), generator)
    result = fit(model, split, run.train, generator)
    return TrainedRun(run, model, result, split, peak_memory_mb())


def sequential_engine(runs: Sequence[RunConfig], splits: Mapping[tuple, Split]) -> Iterator[TrainedRun]:
    """Train runs one after another with the reference trainer."""
    for run in runs:
        yield train_one(run, splits[split_key(run)])


ENGINES: dict[str, Engine] = {"sequential": sequential_engine}


def train_group(engine: str, runs: Sequence[RunConfig], threads: int = 1) -> list[RunArtifacts]:
    """Train ``runs`` with ``engine`` in this process and return their artefacts.

    A plain top-level function of picklable arguments, so executors (process
    pools, Dask workers) can run it; it loads and splits the data itself.
    """
    import torch

    torch.set_num_threads(max(1, threads))
    splits = prepare_splits(runs)
    return [build_artifacts(t) for t in ENGINES[engine](runs, splits)]
