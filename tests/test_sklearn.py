import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.model_selection import cross_val_score
from sklearn.utils.estimator_checks import check_estimator

from learnact.model.activations.families import list_families
from learnact.sklearn import GatedMLPClassifier


def test_passes_scikit_learn_estimator_checks():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(GatedMLPClassifier(max_epochs=60, hidden=(16,), patience=20), on_fail=None)
    failed = [(r["check_name"], str(r["exception"])[:120]) for r in results if r["status"] == "failed"]
    assert not failed


def test_passes_scikit_learn_estimator_checks_with_the_spline_family():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = GatedMLPClassifier(activation="spline", max_epochs=30, hidden=(8,), patience=10, lr=0.01)
        results = check_estimator(est, on_fail=None)
    failed = [(r["check_name"], str(r["exception"])[:120]) for r in results if r["status"] == "failed"]
    assert results and not failed


@pytest.mark.parametrize("family", list_families())
def test_every_learnable_family_is_an_activation(family):
    X, y = load_breast_cancer(return_X_y=True)
    clf = GatedMLPClassifier(activation=family, hidden=(8,), max_epochs=15, lr=0.01, random_state=1)
    clf.fit(X[:400], y[:400])
    assert clf.score(X[400:], y[400:]) > 0.85
    assert type(clf.model_.activations[0]).family == family and clf.gate_weights_ == [None]


def test_family_params_reach_the_model_and_bad_ones_name_the_argument():
    X, y = load_breast_cancer(return_X_y=True)
    clf = GatedMLPClassifier(activation="prelu", activation_params={"granularity": "unit"}, hidden=(6, 4),
                             max_epochs=2).fit(X, y)
    assert [tuple(a.slope.shape) for a in clf.model_.activations] == [(6,), (4,)]
    assert clf.activation_params == {"granularity": "unit"}  # not modified by fit
    with pytest.raises(ValueError, match=r"activation_params\.grid_size: must be >= 1, got 0"):
        GatedMLPClassifier(activation="spline", activation_params={"grid_size": 0}).fit(X, y)
    with pytest.raises(ValueError, match=r"activation_params only apply to the learnable families"):
        GatedMLPClassifier(activation="gated", activation_params={"grid_size": 4}).fit(X, y)
    with pytest.raises(ValueError, match=r"unknown activation 'splin' \(did you mean 'spline'\?\)"):
        GatedMLPClassifier(activation="splin").fit(X, y)


def test_binary_fit_predict_and_gates():
    X, y = load_breast_cancer(return_X_y=True)
    clf = GatedMLPClassifier(max_epochs=40, temperature=0.7, random_state=3).fit(X[:420], y[:420])
    assert clf.score(X[420:], y[420:]) > 0.9
    proba = clf.predict_proba(X[420:])
    assert proba.shape == (149, 2) and np.allclose(proba.sum(1), 1)
    for layer in clf.gate_weights_:
        assert len(layer) == 3 and abs(sum(layer) - 1) < 1e-6
    again = GatedMLPClassifier(max_epochs=40, temperature=0.7, random_state=3).fit(X[:420], y[:420])
    np.testing.assert_array_equal(again.predict_proba(X[420:]), proba)


def test_multiclass_with_string_labels_and_cross_validation():
    X, y = load_wine(return_X_y=True)
    labels = np.array(["a", "b", "c"])[y]
    scores = cross_val_score(GatedMLPClassifier(max_epochs=60, gate="neuron", hidden=(16,)), X, labels, cv=3)
    assert scores.mean() > 0.9
    clf = GatedMLPClassifier(max_epochs=20, activation="tanh").fit(X, labels)
    assert set(clf.predict(X)) <= {"a", "b", "c"} and clf.gate_weights_ == [None, None]


def test_bad_parameters_fail_at_fit_with_the_value():
    X, y = load_breast_cancer(return_X_y=True)
    with pytest.raises(ValueError, match="temperature"):
        GatedMLPClassifier(temperature=0).fit(X, y)
    with pytest.raises(ValueError, match="unknown activation 'tahn'"):
        GatedMLPClassifier(activation="tahn").fit(X, y)
