"""Training engines: turn run configs into trained models.

An engine is ``(runs, splits) -> iterator of TrainedRun`` in any order. The
sequential engine calls the reference trainer once per run; it is the
reference every other engine must match. The vectorised engine trains
groups of runs as stacked models (:mod:`learnact.training.vectorized`); in
its default reference mode every run is bit-identical to its sequential twin.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import resource
from collections.abc import Callable, Iterator, Mapping, Sequence

import torch

from .._gc import paused
from .._hooks import Hooks
from ..config import RunConfig
from ..data import Split
from ..evaluation.status import FINISHED
from ..exceptions import ConfigError
from ..model import MLP, init_parameters_
from ..model.device import resolve_device
from ..names import FAST_ENGINES
from ..store import RunArtifacts
from ..training import fit, native, run_generator
from ..training.schedules import temperature_schedule
from ..training.scheduling import Executor, default_workers, member_cost, plan_stacks, run_stacks, single_thread
from ..training.segments import choose_family_strategies
from ..training.streams import StreamMode
from ..training.vectorized import StackedFit, final_temperature_, fit_stacked, load_parameters_
from .artifacts import TrainedRun, add_costs, build_artifacts, cost_key
from .run_splits import prepare_splits, split_key

__all__ = [
    "Engine",
    "ENGINES",
    "STREAM_KEY",
    "build_model",
    "train_one",
    "sequential_engine",
    "vectorized_engine",
    "peak_memory_mb",
    "split_key",
    "split_shadows",
    "prepare_splits",
    "train_group",
    "when_trained",
]

Engine = Callable[[Sequence[RunConfig], Mapping[tuple, Split]], Iterator[TrainedRun]]


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def build_model(run: RunConfig, split: Split) -> MLP:
    """The run's backbone with PyTorch-default initial values drawn from ``run.seed``.

    Returns the model and leaves the run's generator state implied: use
    :func:`train_one` to train with the matching shuffling stream.
    """
    out = split.n_outputs
    return MLP(split.n_features, run.backbone.hidden, out, run.activation)


def train_one(run: RunConfig, split: Split, device: str = "cpu") -> TrainedRun:
    """Build, initialise (seeded) and train one run with the reference trainer.

    ``device`` (``"cpu" | "cuda" | "auto"``) is where it trains; the initial
    values and the shuffling are drawn on the CPU as always, and the trained
    model comes back on the CPU, so its artefacts are made there.
    """
    generator = run_generator(run.seed)
    model = init_parameters_(build_model(run, split), generator)
    result = fit(model, split, run.train, generator, schedule=temperature_schedule(run.activation, run.train),
                 device=device)
    return TrainedRun(run, model.cpu(), result, split, peak_memory_mb())


def sequential_engine(runs: Sequence[RunConfig], splits: Mapping[tuple, Split], *,
                      device: str = "cpu") -> Iterator[TrainedRun]:
    """Train runs one after another with the reference trainer, on ``device``."""
    for run in runs:
        yield train_one(run, splits[split_key(run)], device)


def vectorized_engine(
    runs: Sequence[RunConfig],
    splits: Mapping[tuple, Split],
    *,
    mode: StreamMode = "reference",
    workers: int | None = None,
    executor: Executor = "auto",
    max_members: int = 64,
) -> Iterator[TrainedRun]:
    """Train runs as stacked models, many members at once.

    Each run is built and initialised exactly as :func:`train_one` does it;
    runs of every activation kind (fixed, gated, learnable family) train in
    stacks. Runs that can share a stack are grouped (:func:`~learnact.training.scheduling.plan_stacks`)
    and the stacks are trained on ``workers`` forked worker processes (one
    intra-op thread each). Runs that differ from another run only by an
    earlier stop (:func:`split_shadows`) are read off that run's training
    instead of training again. Runs come back stack by stack, each with its
    own model (best weights), history and split.

    Args:
        runs: The runs to train.
        splits: Their data splits, by :func:`split_key`.
        mode: ``"reference"``: every run draws its reference random stream and
            is bit-identical to the sequential engine; ``"fast"``: mini-batch
            orders from a vectorised hash of (seed, epoch) instead (not
            bit-comparable).
        workers: Parallel workers (default: PyTorch's thread budget, see
            :func:`~learnact.training.scheduling.default_workers`, so
            ``train_group(..., threads=n)`` uses ``n`` worker processes).
        executor: Where stacks run: ``"auto"`` (forked processes where that is
            safe, else one after another in this thread), ``"processes"``,
            ``"threads"`` or ``"inline"``.
        max_members: Largest stack (more, smaller stacks cost more per step;
            bigger ones outgrow the caches).
    """
    runs = list(runs)
    # the objects alive now (PyTorch's, the caller's) are never garbage: without this, building the models
    # below set off full collections over them (0.1 s); forked workers leave those pages alone, too
    gc.freeze()
    if not runs:
        return
    runs, followers = split_shadows(runs)
    models, generators, member_splits = [], [], []
    for run in runs:
        split = splits[split_key(run)]
        generator = run_generator(run.seed)
        models.append(init_parameters_(build_model(run, split), generator))
        generators.append(generator)
        member_splits.append(split)
    configs = [r.train for r in runs]
    schedules = [temperature_schedule(r.activation, r.train) for r in runs]
    native.load()  # build or load the C++ step here, once, before workers fork
    choose_family_strategies(models)  # likewise: the workers inherit the choices and the probes' imports
    n_workers = default_workers() if workers is None else workers
    stacks = plan_stacks(models, configs, member_splits, max_members=max_members, n_parts=n_workers)
    shadows_of = [[(shadow, members.index(host)) for shadow, host in followers if host in members]
                  for members in stacks]

    def job(members: list[int], shadows: list[tuple[RunConfig, int]]) -> Callable[[], StackedFit]:
        return functools.partial(
            _fit_portable, [models[i] for i in members], [member_splits[i] for i in members],
            [configs[i] for i in members], generators=[generators[i] for i in members],
            seeds=[runs[i].seed for i in members], mode=mode, shadows=[(r.train, pos) for r, pos in shadows],
            schedules=[schedules[i] for i in members])

    costs = [sum(member_cost(models[i], configs[i]) for i in m) for m in stacks]
    jobs = [job(m, sh) for m, sh in zip(stacks, shadows_of, strict=True)]
    for index, fitted in run_stacks(jobs, costs, n_workers, executor):
        memory = max(peak_memory_mb(), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0)
        members = stacks[index]
        states = [{k: torch.from_numpy(v) for k, v in state.items()} for state in fitted.states]
        for i, result, state in zip(members, fitted.results, states, strict=False):
            model = load_parameters_(models[i], state)
            final_temperature_(model, schedules[i], result)
            yield TrainedRun(runs[i], model, result, member_splits[i], memory, stacked=True)
        for (run, _), result, state in zip(shadows_of[index], fitted.results[len(members):], states[len(members):],
                                           strict=True):
            split = splits[split_key(run)]
            model = load_parameters_(build_model(run, split), state)
            final_temperature_(model, temperature_schedule(run.activation, run.train), result)
            yield TrainedRun(run, model, result, split, memory, stacked=True)


def _fit_portable(*args: object, **kwargs: object) -> StackedFit:
    """:func:`~learnact.training.vectorized.fit_stacked`, its states as numpy arrays.

    A worker process's result travels back pickled; multiprocessing would
    send tensors through shared memory, one segment per tensor, which took
    longer than the arrays' bytes (about 0.1 s for the paper's 75 runs).
    """
    fitted = fit_stacked(*args, **kwargs)  # type: ignore[arg-type]
    fitted.states = [{k: v.numpy() for k, v in state.items()} for state in fitted.states]  # type: ignore[misc]
    return fitted


def _trajectory_key(run: RunConfig) -> str:
    """Everything that shapes a run's training trajectory: all but its name, ``max_epochs`` and ``patience``.

    A temperature schedule is laid over ``max_epochs``, so with one,
    ``max_epochs`` shapes the trajectory too.
    """
    train = run.train.model_dump()
    if temperature_schedule(run.activation, run.train) is None:
        del train["max_epochs"]
    del train["patience"]
    return json.dumps({"seed": run.seed, "data": run.data.model_dump(),
                       "backbone": run.backbone.model_dump(mode="json"),
                       "activation": run.activation.canonical(), "train": train}, sort_keys=True)


def split_shadows(runs: Sequence[RunConfig]) -> tuple[list[RunConfig], list[tuple[RunConfig, int]]]:
    """Separate runs that only stop earlier than another run (shadows) from the runs to train.

    Two runs that differ only in their name, ``max_epochs`` and ``patience``
    follow the same trajectory until one stops: the paper's static gate at
    T = 0.7 and its entropy sweep's lambda = 0 are such a pair. A run is a
    shadow of a trained run whose ``max_epochs`` and ``patience`` are both at
    least its own; it is then read off that run's training
    (``shadows`` of :func:`~learnact.training.vectorized.fit_stacked`), with
    results identical to training it.

    Returns:
        ``(trained, shadows)``: the runs to train, and each shadow with the
        index (in ``trained``) of the run it follows.
    """
    groups: dict[str, list[int]] = {}
    for i, run in enumerate(runs):
        groups.setdefault(_trajectory_key(run), []).append(i)
    host_of: dict[int, int] = {}
    for members in groups.values():
        hosts: list[int] = []
        for i in sorted(members, key=lambda i: (-runs[i].train.max_epochs, -runs[i].train.patience, i)):
            t = runs[i].train
            host = next((h for h in hosts if runs[h].train.max_epochs >= t.max_epochs
                         and runs[h].train.patience >= t.patience), None)
            if host is None:
                hosts.append(i)
            else:
                host_of[i] = host
    trained = [i for i in range(len(runs)) if i not in host_of]
    position = {i: k for k, i in enumerate(trained)}
    return [runs[i] for i in trained], [(runs[i], position[h]) for i, h in sorted(host_of.items())]


STREAM_KEY = "random_stream"
"""Key of a run's ``metrics.json`` that an engine of :data:`~learnact.names.FAST_ENGINES` sets to ``"fast"``.

A run id hashes the run's settings, not the engine, and the exact engines' runs are bit-identical; a fast run is
not, so it records this (the exact engines' runs have no such key: their files are as before), and resuming a
study with the other kind of engine is refused (:func:`~learnact.experiment.runner.check_engine_unchanged`)."""

ENGINES: dict[str, Engine] = {
    "sequential": sequential_engine,
    "vectorized": vectorized_engine,
    "vectorized-fast": functools.partial(vectorized_engine, mode="fast"),
}


_WHEN_TRAINED = Hooks()
"""Callbacks :func:`train_group` calls in this process once a group's training is over (see :func:`when_trained`)."""


def when_trained(callback: Callable[[int], None]) -> contextlib.AbstractContextManager[None]:
    """Within the block, call ``callback(n_runs)`` each time :func:`train_group` finishes training a group here.

    It is called in the process that trains, as the last stack ends and
    before the runs' step costs are timed and their folders written (about
    0.3 s and more on 2 cores): ``learnact run`` starts the report's helper
    then, so its imports use the core those steps leave idle. A group
    trained elsewhere (a process pool, Dask) calls nothing here. An
    exception ``callback`` raises propagates and fails the group.
    """
    return _WHEN_TRAINED.during(callback)


def train_group(engine: str, runs: Sequence[RunConfig], threads: int = 1,
                device: str = "cpu") -> list[RunArtifacts]:
    """Train ``runs`` with ``engine`` in this process and return their artefacts.

    A plain top-level function of picklable arguments, so executors (process
    pools, Dask workers) can run it; it loads and splits the data itself.
    ``device`` (``"cpu" | "cuda" | "auto"``) is a run-time choice, not part of
    any run's identity: only the sequential engine trains off the CPU (the
    vectorised engines refuse a CUDA device: :func:`engine_device`).
    """
    import torch

    resolved = engine_device(engine, device)
    torch.set_num_threads(max(1, threads))
    splits = prepare_splits(runs)
    if resolved.type == "cpu":
        trained = ENGINES[engine](runs, splits)
    else:
        trained = sequential_engine(runs, splits, device=str(resolved))
    # The vectorised engine's forked workers may still be training on every core while this process builds a
    # finished run's artefacts (predictions, metrics). On several OpenMP threads that small tensor work
    # oversubscribed the cores: the threads spin-waited for each other and a 0.3 ms forward took about 50 ms.
    one_thread = engine.startswith("vectorized")
    built: list[tuple[str, RunArtifacts]] = []
    # One run per variant is kept for the cost measurement, not every model: a finished one where there is one
    # (a diverged run's non-finite weights could time differently).
    chosen: dict[str, tuple[TrainedRun, bool]] = {}
    # The artefacts pile up here while the stacks train (histories, predictions: long-lived, without cycles);
    # the collector's full collections walked all of them, and every module, each few hundred runs (1.7 s in
    # 13 collections over the 1,005-run study, beside the training workers). The sequential engine trains in
    # this loop itself, for as long as a study takes: its collector stays on.
    with paused() if one_thread else contextlib.nullcontext():
        for t in trained:
            with single_thread() if one_thread else contextlib.nullcontext():
                art = build_artifacts(t, cost=False)
            key, finished = cost_key(t), art.metrics["status"] == FINISHED
            if key not in chosen or (finished and not chosen[key][1]):
                chosen[key] = (t, finished)
            built.append((key, art))
    _WHEN_TRAINED.call(len(runs))
    # What each variant costs alone, timed once no run trains any more, the variants interleaved.
    add_costs(built, {key: t for key, (t, _) in chosen.items()})
    if engine in FAST_ENGINES:  # not bit-comparable with the exact engines' runs of the same ids
        for _, art in built:
            art.metrics[STREAM_KEY] = "fast"
    return [art for _, art in built]


def engine_device(engine: str, device: str) -> torch.device:
    """The device ``engine`` trains on for ``device`` (``"cpu" | "cuda" | "auto"``).

    Raises:
        ValueError: A bad device, or CUDA without a CUDA device
            (:func:`~learnact.model.device.resolve_device`).
        ConfigError: A vectorised engine with a CUDA device (they train on the
            CPU only; the sequential engine trains anywhere).
    """
    resolved = resolve_device(device)
    if resolved.type != "cpu" and engine != "sequential":
        raise ConfigError(f"engine {engine!r} trains on the CPU only, got device {device!r}; "
                          f"use --engine sequential to train on {resolved.type}")
    return resolved
