"""scikit-learn compatible estimators with learned activation functions.

:class:`GatedMLPClassifier` and :class:`GatedMLPRegressor` wrap the MLP
backbone and the reference trainer (the same activation maths, objective and
early stopping as ``learnact run``) behind ``fit / predict / score``
(``predict_proba`` for the classifier), so they work with pipelines,
``cross_val_score`` and grid searches. Their activation is a gated mixture, a
fixed candidate or any learnable family (``activation="spline"``). The
regressor trains on standardised targets with the mean squared error and an
identity output, as a regression study does.
"""

from __future__ import annotations

import copy
import numbers
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from pydantic import ValidationError
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from ._checks import did_you_mean
from .config import ActivationConfig, TrainConfig, format_validation_error
from .data import Split, Standardizer
from .evaluation.metrics import class_probabilities
from .model import MLP, init_parameters_
from .model.device import resolve_device
from .model.inference import predict_output, predict_proba
from .training import EpochRecord, run_generator
from .training import fit as fit_model

__all__ = ["GatedMLPClassifier", "GatedMLPRegressor"]


def _plain(value: Any) -> Any:
    """``value`` with numpy scalars as Python numbers (a grid over ``np.arange`` hands out ``np.int64``): the
    configs' strict number fields refuse numpy types."""
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def _widths(hidden: Any) -> tuple[Any, ...]:
    """``hidden`` as a tuple of plain widths; one integer is one layer (as scikit-learn's MLPs take it)."""
    if isinstance(hidden, (numbers.Integral, np.integer)) and not isinstance(hidden, (bool, np.bool_)):
        return (int(hidden),)
    if isinstance(hidden, (str, bytes)) or not isinstance(hidden, (Sequence, np.ndarray)):
        raise ValueError(f"hidden must be a sequence of layer widths (or one width), e.g. hidden=(64, 32), got "
                         f"hidden={hidden!r}")
    return tuple(_plain(h) for h in hidden)


def _check_scalable(X: np.ndarray) -> None:
    """Raise ``ValueError`` naming the first column of ``X`` (``(n_samples, n_features)``) whose values are too
    large to standardise: its variance would overflow float64 (:func:`~learnact.data.sources.scale_limit`, the
    bound a CSV is checked against), and training then "diverged" for no reason it named."""
    from .data.sources import scale_limit

    limit = scale_limit(len(X))
    big = np.abs(X) > limit
    if big.any():
        j = int(np.flatnonzero(big.any(axis=0))[0])
        i = int(np.flatnonzero(big[:, j])[0])
        raise ValueError(f"X column {j} holds values too large to standardise (row {i}: {X[i, j]:.3g}; the limit "
                         f"for {len(X)} rows is {limit:.3g}); rescale it, e.g. divide it by a power of ten")


class _GatedMLP(BaseEstimator):
    """What the classifier and the regressor share: parameters, activation, seeds, warm start and training."""

    # what fit sets (annotations only: an unfitted estimator has none of them)
    model_: MLP
    n_iter_: int
    loss_curve_: list[float]
    _shuffle_state_: torch.Tensor

    def __init__(
        self,
        hidden: Sequence[int] = (64, 32),
        activation: str = "gated",
        activation_params: dict[str, Any] | None = None,
        candidates: Sequence[str] = ("relu", "tanh", "sigmoid"),
        gate: str = "layer",
        temperature: float = 1.0,
        entropy_weight: float = 0.0,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        batch_size: int = 64,
        max_epochs: int = 300,
        patience: int = 30,
        val_size: float = 0.2,
        random_state: int | np.random.RandomState | None = 0,
        warm_start: bool = False,
        verbose: int = 0,
        device: str = "cpu",
    ) -> None:
        self.hidden = hidden
        self.activation = activation
        self.activation_params = activation_params
        self.candidates = candidates
        self.gate = gate
        self.temperature = temperature
        self.entropy_weight = entropy_weight
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.val_size = val_size
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.device = device

    def _activation_config(self) -> ActivationConfig:
        from .model.activations import list_candidates
        from .model.activations.families import list_families

        name, params = self.activation, self.activation_params
        families, candidates = list_families(), list_candidates()
        if name != "gated" and name not in families and name not in candidates:
            hint = did_you_mean(str(name), ["gated", *families, *candidates])
            raise ValueError(f"unknown activation {name!r}{hint}; "
                             f"use 'gated', a learnable family ({', '.join(families)}) or a candidate "
                             f"({', '.join(candidates)})")
        if params is not None and not isinstance(params, dict):
            raise ValueError(f"activation_params must be a dict or None, got {type(params).__name__}")
        if params and name not in families:
            raise ValueError(f"activation_params only apply to the learnable families ({', '.join(families)}), "
                             f"got activation={name!r} with activation_params={params!r}")
        fields = {"params": "activation_params", "kind": "activation"}
        try:
            if name == "gated":
                # a string goes as it is, for the config to refuse (tuple("relu") would be its letters)
                names = self.candidates if isinstance(self.candidates, str) else tuple(self.candidates)
                return ActivationConfig(kind="gated", candidates=names, gate=self.gate,  # type: ignore[arg-type]  # str, validated here
                                        temperature=_plain(self.temperature))
            if name in families:
                return ActivationConfig(kind=name, params=dict(params or {}))
            return ActivationConfig(kind="fixed", activation=name)
        except ValidationError as err:
            raise format_validation_error(
                err, root=ActivationConfig,
                path=lambda loc: ".".join([fields.get(str(loc[0]), str(loc[0])), *map(str, loc[1:])]) if loc else "",
            ) from None

    def _seeds(self) -> tuple[int, int]:
        """``(split seed, torch seed)`` from ``random_state``: an int is both (today's results), else two draws."""
        rs = self.random_state
        if isinstance(rs, numbers.Integral) and not isinstance(rs, bool):
            if not 0 <= rs < 2**32:  # numpy's seeds (the validation split's)
                raise ValueError(f"random_state must be an integer in [0, 2**32 - 1], a RandomState or None, got "
                                 f"random_state={rs!r}")
            return int(rs), int(rs)
        rng = check_random_state(rs)
        split_seed, torch_seed = rng.randint(0, np.iinfo(np.int32).max, size=2)
        return int(split_seed), int(torch_seed)

    def _check_weights(self, sample_weight: Any, X: np.ndarray) -> np.ndarray | None:
        weights = None if sample_weight is None else _check_sample_weight(sample_weight, X, dtype=np.float64)
        if weights is not None and (weights < 0).any():
            raise ValueError(f"sample_weight must be >= 0, got {float(weights.min())} at row "
                             f"{int(weights.argmin())}")
        return weights

    def _train(self, X: np.ndarray, targets: np.ndarray, *, warm: bool, n_classes: int, task: str,
               stratify: np.ndarray | None, weights: np.ndarray | None, class_names: tuple[str, ...] = ()) -> None:
        """Split off the validation rows, standardise, and train (or continue training) ``model_``.

        Args:
            X: Features, ``(n_samples, n_features)`` float64.
            targets: Class indices ``(n_samples,)`` int, or regression targets ``(n_samples,)`` float64.
            warm: Continue from the fitted model, scaler and target scaling.
            n_classes: Number of classes; 0 for regression.
            task: ``"classification"`` or ``"regression"``.
            stratify: Labels to stratify the validation split by, or ``None``.
            weights: Per-row sample weights, or ``None``.
        """
        device = resolve_device(self.device)
        act = self._activation_config()
        hidden = _widths(self.hidden)
        verbose = _plain(self.verbose)
        if not isinstance(verbose, int):
            raise ValueError(f"verbose must be an integer (> 0: one line per epoch), got verbose={self.verbose!r}")
        try:
            train = TrainConfig(lr=_plain(self.lr), weight_decay=_plain(self.weight_decay),
                                batch_size=_plain(self.batch_size), max_epochs=_plain(self.max_epochs),
                                patience=_plain(self.patience), entropy_weight=_plain(self.entropy_weight))
        except ValidationError as err:  # the estimator's parameter names are TrainConfig's
            raise format_validation_error(err, root=TrainConfig) from None
        split_seed, torch_seed = self._seeds()
        share: object = _plain(self.val_size)
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share < 1:
            raise ValueError(f"val_size must be a share in (0, 1) of the training rows, got val_size={share!r}")
        _check_scalable(X)
        i_tr, i_va = self._validation_split(len(targets), float(share), split_seed, stratify)
        idx = np.arange(len(targets))
        if not warm:
            self.scaler_ = Standardizer.fit(X[i_tr])
            if task == "regression":  # targets standardised on the training rows, as in a regression study
                from .data.sources import target_scaling

                # the study's rule (a DataError is a ValueError): too large or too small a spread is refused; a y of
                # about 1e-300 had trained at scale 1, in the wrong units
                self._target_mean_, self._target_scale_ = target_scaling(targets[i_tr], "y")
        if weights is not None:
            for part, rows in (("training", i_tr), ("validation", i_va)):
                if not weights[rows].sum() > 0:
                    raise ValueError(
                        f"sample_weight: the {len(rows)} {part} rows (val_size={share} of {len(targets)} rows "
                        f"held out for early stopping) all have weight 0, so the {part} loss measures nothing; "
                        f"give some of them weight, or change random_state or val_size to hold out other rows")
        Xs = self.scaler_.transform(X).astype(np.float32)
        if task == "regression":
            y = ((targets - self._target_mean_) / self._target_scale_).astype(np.float32)
            extra = {"task": "regression", "target_mean": self._target_mean_, "target_scale": self._target_scale_}
        else:
            y, extra = targets, {}
        split = Split(Xs[i_tr], y[i_tr], Xs[i_va], y[i_va], Xs[:0], y[:0], i_tr, i_va, idx[:0],
                      self.scaler_, n_classes, class_names, **extra)  # type: ignore[arg-type]  # task, floats
        if warm:
            model = self.model_
            generator = torch.Generator()
            generator.set_state(self._shuffle_state_)
        else:
            generator = run_generator(torch_seed)
            model = MLP(X.shape[1], hidden, split.n_outputs, act)
            init_parameters_(model, generator)
            self.n_iter_ = 0
            self.loss_curve_ = []
        result = fit_model(model, split, train, generator, device=device,
                           sample_weight=None if weights is None else (weights[i_tr], weights[i_va]),
                           on_epoch=self._report_epoch if verbose > 0 else None)
        self._shuffle_state_ = generator.get_state()
        self.model_ = model
        self.history_ = result.history
        self.best_epoch_ = result.best_epoch
        self.n_iter_ += result.epochs_run
        self.loss_curve_ = [*self.loss_curve_, *(r.train_task for r in result.history)]
        if result.diverged_epoch is not None:
            what = (f"training diverged at epoch {result.diverged_epoch} ({result.diverged_reason}); "
                    f"lower lr (now {self.lr}) or temperature, or raise weight_decay")
            if result.best_epoch == 0:
                raise ValueError(f"{what}: no epoch had a finite validation loss, so there are no weights to keep")
            warnings.warn(f"{what}; kept the weights of epoch {result.best_epoch}", ConvergenceWarning,
                          stacklevel=3)

    @staticmethod
    def _validation_split(n: int, share: float, seed: int, stratify: np.ndarray | None) -> tuple[np.ndarray,
                                                                                                 np.ndarray]:
        """``(training rows, validation rows)``: ``ceil(share * n)`` rows held out, as ``train_test_split``
        does; stratified by ``stratify`` where both parts can hold every class, else drawn at random.

        Raises:
            ValueError: A part would have no row; the message names ``val_size`` and the rows.
        """
        n_val = int(np.ceil(share * n))
        if n_val < 1 or n - n_val < 1:
            raise ValueError(f"val_size={share} of {n} rows leaves {n - n_val} for training and {n_val} for early "
                             f"stopping; each needs at least one: fit on more rows or change val_size")
        if stratify is not None and min(n_val, n - n_val) < len(np.unique(stratify)):
            stratify = None  # too few rows in a part for every class: scikit-learn's stratified split refuses
        idx = np.arange(n)
        i_tr, i_va = train_test_split(idx, test_size=n_val, random_state=seed, stratify=stratify)
        return i_tr, i_va

    def _report_epoch(self, record: EpochRecord) -> None:
        """The ``verbose`` line of one epoch."""
        print(f"epoch {record.epoch}: train loss {record.train_task:.6f}, val loss {record.val_loss:.6f}",
              flush=True)

    @property
    def gate_weights_(self) -> list[list[float] | list[list[float]] | None]:
        """Learned static gate weights per hidden layer (``None`` if fixed, a family or input-dependent)."""
        check_is_fitted(self, "model_")
        out: list[Any] = []
        for act in self.model_.activations:
            if getattr(act, "logits", None) is None:
                out.append(None)
            else:
                out.append(act.gate_weights().detach().double().tolist())  # type: ignore[operator]  # a gated layer
        return out


_PARAMS_DOC = """
    Args:
        hidden: Hidden layer widths.
        activation: ``"gated"`` for a mixture, a candidate name (``"tanh"``)
            for a fixed activation, or a learnable family (``"prelu"``,
            ``"spline"``, ...; see :mod:`learnact.model.activations.families`).
        activation_params: A family's hyper-parameters, e.g.
            ``{"granularity": "unit"}`` or ``{"grid_size": 8}`` (``None``: its
            defaults); only for families.
        candidates: Candidate names mixed by the gates.
        gate: ``"layer"``, ``"neuron"`` or ``"input"``.
        temperature: Softmax temperature ``T > 0``.
        entropy_weight: Signed lambda of the entropy term (``> 0``: select one).
        lr, weight_decay, batch_size, max_epochs, patience: Training settings.
        val_size: Share of the training rows held out for early stopping.
        random_state: Seed of the split, the initial weights and the shuffling,
            with scikit-learn's semantics: an int (the same fit every time),
            a ``numpy.random.RandomState`` (drawn from, so each fit differs)
            or ``None`` (fresh randomness).
        warm_start: A second ``fit`` continues from the fitted weights (same
            features, scaling and validation rows{same}) instead of starting
            afresh; its epochs add to ``n_iter_`` and ``loss_curve_``.
        verbose: ``> 0``: print one line per epoch (losses) to stdout.
        device: Where to train and predict: ``"cpu"``, ``"cuda"`` or
            ``"auto"`` (CUDA when available); the fitted model stays there.
"""


class GatedMLPClassifier(ClassifierMixin, _GatedMLP):
    __doc__ = ("""MLP classifier whose hidden activations are learned (gated mixtures by default).
""" + _PARAMS_DOC.replace("{same}", ", same classes") + """
    Attributes:
        classes_: Class labels seen in ``fit``.
        model_: The trained :class:`~learnact.model.MLP` (best validation weights).
        scaler_: The standardisation fitted on the training rows.
        history_: Per-epoch records (:class:`~learnact.training.EpochRecord`).
        n_iter_: Epochs run, over all fits of a warm start.
        loss_curve_: Training task loss per epoch (length ``n_iter_``).
        best_epoch_: Epoch (of the last fit) whose weights were restored.
        gate_weights_: Per hidden layer, the learned static gate weights
            (``None`` for fixed, family or input-dependent layers).

    Shape:
        - X: ``(n_samples, n_features)``; predict_proba output ``(n_samples, n_classes)``
    """)

    def _continues(self, n_features: int, classes: np.ndarray) -> bool:
        """Whether this fit warm-starts from the fitted model (``warm_start`` and a compatible fit)."""
        if not (self.warm_start and hasattr(self, "model_")):
            return False
        if n_features != self.n_features_in_ or not np.array_equal(classes, self.classes_):
            raise ValueError(f"warm_start=True continues the fitted model, which has {self.n_features_in_} "
                             f"features and classes {self.classes_.tolist()}; got {n_features} features and "
                             f"classes {classes.tolist()}; fit with warm_start=False to start afresh")
        return True

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> GatedMLPClassifier:
        """Standardise, hold out ``val_size`` for early stopping, and train.

        Args:
            X: Features, ``(n_samples, n_features)``.
            y: Class labels, ``(n_samples,)``.
            sample_weight: Non-negative weight per row (``None``: all 1). The
                training and validation losses are weighted means
                (:func:`~learnact.training.objective.task_loss`), so a row of
                weight 0 does not count.

        Raises:
            ValueError: Bad parameters or data, or training that diverged
                (non-finite loss or weights) before any finite validation
                loss; the message names the epoch, what was not finite and
                the settings to lower.
        """
        X, y = validate_data(self, X, y, dtype=np.float64, reset=not (self.warm_start and hasattr(self, "model_")))
        check_classification_targets(y)
        classes, y_idx = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"y needs at least two classes, got 1 class: {classes.tolist()}")
        warm = self._continues(X.shape[1], classes)
        self.classes_ = classes
        weights = self._check_weights(sample_weight, X)
        stratify = y_idx if np.bincount(y_idx).min() >= 2 else None
        self._train(X, y_idx, warm=warm, n_classes=len(classes), task="classification", stratify=stratify,
                    weights=weights, class_names=tuple(map(str, classes)))
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns in ``classes_`` order."""
        check_is_fitted(self, "model_")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        prob, _ = predict_proba(self.model_, self.scaler_.transform(X))
        return class_probabilities(prob)

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class label per row."""
        check_is_fitted(self, "model_")
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


class GatedMLPRegressor(RegressorMixin, _GatedMLP):
    __doc__ = ("""MLP regressor whose hidden activations are learned (gated mixtures by default).

    The targets are standardised on the training rows (mean and standard
    deviation); the network has one identity output trained with the mean
    squared error, and :meth:`predict` maps it back to the targets' scale.
    ``score`` is R² (scikit-learn's ``RegressorMixin``).
""" + _PARAMS_DOC.replace("{same}", ", same target scaling") + """
    Attributes:
        model_: The trained :class:`~learnact.model.MLP` (best validation weights).
        scaler_: The feature standardisation fitted on the training rows.
        history_, n_iter_, loss_curve_, best_epoch_, gate_weights_: As
            :class:`GatedMLPClassifier`'s (losses in standardised target units).

    Shape:
        - X: ``(n_samples, n_features)``; y and predict output ``(n_samples,)``
    """)

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> GatedMLPRegressor:
        """Standardise features and targets, hold out ``val_size`` for early stopping, and train.

        Args:
            X: Features, ``(n_samples, n_features)``.
            y: Numeric targets, ``(n_samples,)``, finite.
            sample_weight: Non-negative weight per row (``None``: all 1); the
                losses are weighted means.

        Raises:
            ValueError: Bad parameters or data (text, missing or infinite
                targets, a 2-D ``y``), or training that diverged before any
                finite validation loss.
        """
        warm = self.warm_start and hasattr(self, "model_")
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True, reset=not warm)  # a warm start: same width
        if len(y) < 2:
            raise ValueError(f"n_samples={len(y)}: y needs at least 2 rows (one for training, one for early "
                             f"stopping)")
        weights = self._check_weights(sample_weight, X)
        self._train(X, np.asarray(y, dtype=np.float64), warm=warm, n_classes=0, task="regression", stratify=None,
                    weights=weights)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predicted targets on ``y``'s scale, ``(n_samples,)`` float64.

        Computed in float64 from the trained (float32) weights, so a row's prediction does not depend on the
        rows predicted with it beyond float64 rounding (about 1e-15 relative).
        """
        check_is_fitted(self, "model_")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        # in float64, on a copy of the trained weights: float32 matrix products round differently for different
        # batch sizes (MKL), so a row's float32 prediction changed in its last bits with the rows predicted with it
        exact = copy.deepcopy(self.model_).double()
        out, _ = predict_output(exact, self.scaler_.transform(X), task="regression", dtype=torch.float64)
        return out * self._target_scale_ + self._target_mean_
