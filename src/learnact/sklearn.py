"""A scikit-learn compatible classifier with learned activation functions.

:class:`GatedMLPClassifier` wraps the MLP backbone and the reference trainer
(the same activation maths, objective and early stopping as ``learnact run``)
behind ``fit / predict / predict_proba / score``, so it works with pipelines,
``cross_val_score`` and grid searches. Its activation is a gated mixture, a
fixed candidate or any learnable family (``activation="spline"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import ValidationError
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ._checks import did_you_mean
from .config import ActivationConfig, TrainConfig, format_validation_error
from .data import Split, Standardizer
from .evaluation.metrics import class_probabilities
from .model import MLP, init_parameters_
from .model.inference import predict_proba
from .training import fit as fit_model
from .training import run_generator

__all__ = ["GatedMLPClassifier"]


class GatedMLPClassifier(ClassifierMixin, BaseEstimator):
    """MLP classifier whose hidden activations are learned (gated mixtures by default).

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
        random_state: Seed of the split, the initial weights and the shuffling.

    Attributes:
        classes_: Class labels seen in ``fit``.
        model_: The trained :class:`~learnact.model.MLP` (best validation weights).
        scaler_: The standardisation fitted on the training rows.
        history_: Per-epoch records (:class:`~learnact.training.EpochRecord`).
        gate_weights_: Per hidden layer, the learned static gate weights
            (``None`` for fixed, family or input-dependent layers).

    Shape:
        - X: ``(n_samples, n_features)``; predict_proba output ``(n_samples, n_classes)``
    """

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
        random_state: int = 0,
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
                return ActivationConfig(kind="gated", candidates=tuple(self.candidates), gate=self.gate,  # type: ignore[arg-type]  # str, validated here
                                        temperature=self.temperature)
            if name in families:
                return ActivationConfig(kind=name, params=dict(params or {}))
            return ActivationConfig(kind="fixed", activation=name)
        except ValidationError as err:
            raise format_validation_error(
                err, root=ActivationConfig,
                path=lambda loc: ".".join([fields.get(str(loc[0]), str(loc[0])), *map(str, loc[1:])]) if loc else "",
            ) from None

    def fit(self, X: Any, y: Any) -> GatedMLPClassifier:
        """Standardise, hold out ``val_size`` for early stopping, and train."""
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"y needs at least two classes, got 1 class: {self.classes_.tolist()}")
        act = self._activation_config()
        train = TrainConfig(lr=self.lr, weight_decay=self.weight_decay, batch_size=self.batch_size,
                            max_epochs=self.max_epochs, patience=self.patience,
                            entropy_weight=self.entropy_weight)
        idx = np.arange(len(y_idx))
        counts = np.bincount(y_idx)
        stratify = y_idx if counts.min() >= 2 else None
        i_tr, i_va = train_test_split(idx, test_size=self.val_size, random_state=self.random_state,
                                      stratify=stratify)
        self.scaler_ = Standardizer.fit(X[i_tr])
        Xs = self.scaler_.transform(X).astype(np.float32)
        n_classes = len(self.classes_)
        split = Split(Xs[i_tr], y_idx[i_tr], Xs[i_va], y_idx[i_va], Xs[:0], y_idx[:0], i_tr, i_va, idx[:0],
                      self.scaler_, n_classes, tuple(map(str, self.classes_)))
        generator = run_generator(self.random_state)
        model = MLP(X.shape[1], tuple(self.hidden), 1 if n_classes == 2 else n_classes, act)
        init_parameters_(model, generator)
        result = fit_model(model, split, train, generator)
        self.model_ = model
        self.history_ = result.history
        self.best_epoch_ = result.best_epoch
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
