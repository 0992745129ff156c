"""GatedMLPRegressor: scikit-learn's estimator checks, the targets' scale, a linear baseline, every activation."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression
from sklearn.metrics import r2_score
from sklearn.model_selection import cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator

from learnact.model.activations.families import list_families
from learnact.sklearn import GatedMLPRegressor

EXPECTED_FAILED = {"check_sample_weight_equivalence_on_dense_data":
                   "sample weights are not repeated rows: the split and the mini-batches differ"}


def _failed(est):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(est, on_fail=None, expected_failed_checks=EXPECTED_FAILED)
    return results, [(r["check_name"], str(r["exception"])[:160]) for r in results if r["status"] == "failed"]


def test_passes_scikit_learn_estimator_checks():
    results, failed = _failed(GatedMLPRegressor(max_epochs=60, hidden=(16,), patience=20))
    assert len(results) > 40 and not failed


def test_passes_scikit_learn_estimator_checks_with_a_family():
    results, failed = _failed(GatedMLPRegressor(activation="rational", max_epochs=40, hidden=(8,), patience=10,
                                                lr=0.01))
    assert results and not failed


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return train_test_split(X, y, test_size=0.25, random_state=0)


def test_fits_diabetes_about_as_well_as_a_linear_model(diabetes):
    X_tr, X_te, y_tr, y_te = diabetes
    reg = GatedMLPRegressor(hidden=(16,), max_epochs=300, patience=30, lr=3e-3, random_state=1).fit(X_tr, y_tr)
    pred = reg.predict(X_te)
    assert pred.shape == y_te.shape and pred.dtype == np.float64
    linear = r2_score(y_te, LinearRegression().fit(X_tr, y_tr).predict(X_te))
    assert reg.score(X_te, y_te) == pytest.approx(r2_score(y_te, pred))
    assert r2_score(y_te, pred) > linear - 0.1  # diabetes is nearly linear: R2 about 0.35-0.45 either way
    assert r2_score(y_te, pred) > 0.25


def test_predictions_follow_an_affine_change_of_the_targets(diabetes):
    """Targets are standardised on the training rows, so y -> a*y + b gives the same model and a*pred + b."""
    X_tr, X_te, y_tr, _ = diabetes
    kw = {"hidden": (8,), "max_epochs": 20, "patience": 5, "random_state": 3}
    base = GatedMLPRegressor(**kw).fit(X_tr, y_tr).predict(X_te)
    moved = GatedMLPRegressor(**kw).fit(X_tr, 1000.0 * y_tr - 7.0).predict(X_te)
    np.testing.assert_allclose(moved, 1000.0 * base - 7.0, rtol=1e-5, atol=1e-3)


def test_the_standardisation_is_fitted_on_the_training_rows(diabetes):
    X_tr, _, y_tr, _ = diabetes
    reg = GatedMLPRegressor(hidden=(4,), max_epochs=2, random_state=5, val_size=0.2).fit(X_tr, y_tr)
    i_tr, _ = train_test_split(np.arange(len(y_tr)), test_size=0.2, random_state=5)
    assert reg._target_mean_ == pytest.approx(y_tr[i_tr].mean())
    assert reg._target_scale_ == pytest.approx(y_tr[i_tr].std())
    np.testing.assert_allclose(reg.scaler_.transform(X_tr[i_tr]).mean(axis=0), 0.0, atol=1e-10)


@pytest.mark.parametrize("activation", ["gated", "tanh", *list_families()])
def test_every_activation_regresses(activation, diabetes):
    X_tr, X_te, y_tr, y_te = diabetes
    reg = GatedMLPRegressor(activation=activation, hidden=(8,), max_epochs=40, lr=0.01, random_state=2)
    reg.fit(X_tr, y_tr)
    assert np.isfinite(reg.predict(X_te)).all() and reg.score(X_te, y_te) > 0.0


def test_works_in_a_pipeline_with_cross_validation(diabetes):
    X_tr, _, y_tr, _ = diabetes
    pipe = make_pipeline(StandardScaler(), GatedMLPRegressor(hidden=(8,), max_epochs=30, lr=0.01))
    scores = cross_val_score(pipe, X_tr, y_tr, cv=3, scoring="r2")
    assert scores.shape == (3,) and np.isfinite(scores).all()


def test_warm_start_continues(diabetes):
    X_tr, _, y_tr, _ = diabetes
    reg = GatedMLPRegressor(hidden=(8,), max_epochs=5, patience=100, warm_start=True, random_state=0)
    reg.fit(X_tr, y_tr)
    reg.fit(X_tr, y_tr)
    assert reg.n_iter_ == 10 and len(reg.loss_curve_) == 10
    with pytest.raises(ValueError, match="X has 3 features, but GatedMLPRegressor is expecting 10"):
        reg.fit(X_tr[:, :3], y_tr)


@pytest.mark.parametrize(("y", "problem"), [
    (np.array(["a", "b"] * 50, dtype=object), "could not convert|numeric"),
    (np.r_[np.nan, np.ones(99)], "NaN"),
    (np.r_[np.inf, np.ones(99)], "infinity|inf"),
])
def test_bad_targets_are_refused(y, problem):
    X = np.random.default_rng(0).normal(size=(100, 3))
    with pytest.raises(ValueError, match=problem):
        GatedMLPRegressor(max_epochs=2).fit(X, y)


def test_a_rows_prediction_does_not_depend_on_the_rows_predicted_with_it(diabetes):
    # float32 matrix products round differently for one row than for many (MKL picks other kernels), which
    # scikit-learn's subset-invariance check caught at 1e-7; predictions are computed in float64
    X_train, X_test, y_train, _ = diabetes
    reg = GatedMLPRegressor(activation="rational", max_epochs=20, hidden=(16,), random_state=0).fit(X_train, y_train)
    together = reg.predict(X_test)
    one_by_one = np.concatenate([reg.predict(X_test[i:i + 1]) for i in range(len(X_test))])
    halves = np.concatenate([reg.predict(X_test[:37]), reg.predict(X_test[37:])])
    np.testing.assert_allclose(one_by_one, together, rtol=1e-12, atol=0)
    np.testing.assert_allclose(halves, together, rtol=1e-12, atol=0)


def test_targets_too_large_to_standardise_are_named():
    # their standard deviation overflowed, the scale fell back to 1.0 and training "diverged ... lower lr"
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    with pytest.raises(ValueError, match=r"y is too large to standardise .*largest \|y\| .*e\+160.*rescale it"):
        GatedMLPRegressor(max_epochs=1).fit(X, rng.normal(size=40) * 1e160)


def test_targets_too_small_to_standardise_are_named():
    # a y of about 1e-300 had its standard deviation underflow to 0, trained at scale 1 (in the wrong units) and
    # scored R² 0.0
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    with pytest.raises(ValueError, match=r"y is too small to standardise .*multiply it by a power of 10"):
        GatedMLPRegressor(max_epochs=1).fit(X, rng.normal(size=40) * 1e-300)
    constant = GatedMLPRegressor(max_epochs=1).fit(X, np.full(40, 3.0))  # all equal: scale 1, as before
    assert constant._target_scale_ == 1.0


def test_features_too_large_to_standardise_are_named():
    # the scaler's variance overflowed and the fit "diverged ... lower lr"
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    X[5, 2] = 1e160
    with pytest.raises(ValueError, match=r"X column 2 holds values too large to standardise \(row 5: 1e\+160"):
        GatedMLPRegressor(max_epochs=1).fit(X, rng.normal(size=40))
