import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.model_selection import cross_val_score
from sklearn.utils.estimator_checks import check_estimator

from learnact.model.activations.families import list_families
from learnact.sklearn import GatedMLPClassifier

# Weight 2 is not a duplicated row for a stochastic, early-stopped fit: the validation split and the mini-batches
# differ (scikit-learn exempts its own MLPClassifier with adam from this check for the same reason).
EXPECTED_FAILED = {"check_sample_weight_equivalence_on_dense_data":
                   "sample weights are not repeated rows: the split and the mini-batches differ"}


def test_passes_scikit_learn_estimator_checks():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(GatedMLPClassifier(max_epochs=60, hidden=(16,), patience=20), on_fail=None,
                                  expected_failed_checks=EXPECTED_FAILED)
    failed = [(r["check_name"], str(r["exception"])[:120]) for r in results if r["status"] == "failed"]
    assert not failed


def test_passes_scikit_learn_estimator_checks_with_the_spline_family():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = GatedMLPClassifier(activation="spline", max_epochs=30, hidden=(8,), patience=10, lr=0.01)
        results = check_estimator(est, on_fail=None, expected_failed_checks=EXPECTED_FAILED)
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
    with pytest.raises(ValueError, match=r"activation_params\.grid_size: must be in \[1, 1024\], got 0"):
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
    for bad in (0, 1, 1.5, "0.2"):  # scikit-learn's own message named train_test_split's test_size
        with pytest.raises(ValueError, match=rf"val_size must be a share in \(0, 1\) .*got val_size={bad!r}"):
            GatedMLPClassifier(val_size=bad).fit(X, y)


@pytest.mark.parametrize(("param", "value", "expected"), [
    ("lr", -1, "invalid config: lr: must be > 0, got -1"),
    ("lr", float("nan"), "invalid config: lr: must be a finite number, got nan"),
    ("batch_size", 0, "invalid config: batch_size: must be >= 1, got 0"),
    ("max_epochs", 0, "invalid config: max_epochs: must be >= 1, got 0"),
    ("patience", 0, "invalid config: patience: must be >= 1, got 0"),
    ("weight_decay", -1, "invalid config: weight_decay: must be >= 0, got -1"),
])
def test_bad_training_parameters_are_one_line_naming_the_parameter(param, value, expected):
    """As the activation's parameters are: pydantic's several-line ValidationError reached the user before."""
    from learnact.exceptions import ConfigError

    X, y = load_breast_cancer(return_X_y=True)
    with pytest.raises(ConfigError) as caught:
        GatedMLPClassifier(**{param: value}).fit(X[:60], y[:60])
    assert str(caught.value) == expected


def _one_full_batch_split(X, y, seed):
    """The estimator's own split and scaling, rebuilt here by hand (val_size 0.2, stratified)."""
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    i_tr, i_va = train_test_split(np.arange(len(y)), test_size=0.2, random_state=seed, stratify=y)
    scaler = StandardScaler().fit(X[i_tr])
    return i_tr, i_va, scaler


def test_sample_weight_gives_the_weighted_mean_loss_of_the_first_step():
    import torch
    from sklearn.metrics import log_loss

    from learnact.config import ActivationConfig
    from learnact.model import MLP, init_parameters_
    from learnact.training import run_generator

    X, y = load_breast_cancer(return_X_y=True)
    w = np.random.default_rng(0).uniform(0, 3, len(y))
    clf = GatedMLPClassifier(hidden=(6,), max_epochs=1, batch_size=10_000, random_state=5).fit(X, y, sample_weight=w)
    i_tr, _, scaler = _one_full_batch_split(X, y, 5)
    model = init_parameters_(MLP(X.shape[1], (6,), 1, ActivationConfig(candidates=("relu", "tanh", "sigmoid"))),
                             run_generator(5))
    with torch.no_grad():
        p = torch.sigmoid(model(torch.tensor(scaler.transform(X[i_tr]), dtype=torch.float32))).double().numpy()
    expected = log_loss(y[i_tr], p.reshape(-1), sample_weight=w[i_tr])
    assert clf.n_iter_ == 1 and len(clf.loss_curve_) == 1
    assert clf.loss_curve_[0] == pytest.approx(expected, rel=1e-5)
    unweighted = GatedMLPClassifier(hidden=(6,), max_epochs=1, batch_size=10_000, random_state=5).fit(X, y)
    assert abs(unweighted.loss_curve_[0] - expected) > 1e-3  # the weights made a difference


def test_zero_weights_count_as_dropped_rows_for_the_loss():
    """Training with weight 0 on some rows equals training without them (same split, one full batch)."""
    import torch

    from learnact.config import ActivationConfig, TrainConfig
    from learnact.data import Split, Standardizer
    from learnact.model import MLP, init_parameters_
    from learnact.training import fit, run_generator

    X, y = load_breast_cancer(return_X_y=True)
    rng = np.random.default_rng(1)
    X = X.astype(np.float32)
    scaler = Standardizer.fit(X)
    Xs = scaler.transform(X).astype(np.float32)
    tr, va = np.arange(0, 400), np.arange(400, 500)
    keep_tr, keep_va = rng.random(400) < 0.6, rng.random(100) < 0.6
    cfg = TrainConfig(max_epochs=5, patience=10, batch_size=10_000, lr=0.01)

    def trained(i_tr, i_va, weights):
        split = Split(Xs[i_tr], y[i_tr], Xs[i_va], y[i_va], Xs[:0], y[:0], i_tr, i_va, tr[:0], scaler, 2, ("0", "1"))
        g = run_generator(2)
        model = init_parameters_(MLP(X.shape[1], (6,), 1, ActivationConfig()), g)
        return model, fit(model, split, cfg, g, sample_weight=weights)

    weighted, r_w = trained(tr, va, (keep_tr.astype(float), keep_va.astype(float)))
    dropped, r_d = trained(tr[keep_tr], va[keep_va], None)
    np.testing.assert_allclose([r.train_task for r in r_w.history], [r.train_task for r in r_d.history], rtol=1e-5)
    np.testing.assert_allclose([r.val_loss for r in r_w.history], [r.val_loss for r in r_d.history], rtol=1e-5)
    for a, b in zip(weighted.parameters(), dropped.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_bad_sample_weights_are_refused():
    X, y = load_breast_cancer(return_X_y=True)
    with pytest.raises(ValueError, match=r"sample_weight must be >= 0, got -1.0 at row 3"):
        GatedMLPClassifier(max_epochs=1).fit(X, y, sample_weight=np.r_[np.ones(3), -1.0, np.ones(len(y) - 4)])
    with pytest.raises(ValueError, match="sample_weight"):
        GatedMLPClassifier(max_epochs=1).fit(X, y, sample_weight=np.ones(3))


def test_random_state_follows_scikit_learn():
    X, y = load_breast_cancer(return_X_y=True)
    kw = dict(hidden=(6,), max_epochs=3)
    a = GatedMLPClassifier(random_state=7, **kw).fit(X, y)
    b = GatedMLPClassifier(random_state=np.int64(7), **kw).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))  # an int: the same fit every time
    assert len(GatedMLPClassifier(random_state=None, **kw).fit(X, y).loss_curve_) == 3
    rs = np.random.RandomState(0)
    c = GatedMLPClassifier(random_state=rs, **kw)
    first = c.fit(X, y).predict_proba(X)
    second = c.fit(X, y).predict_proba(X)  # the RandomState was drawn from: a different fit
    assert not np.array_equal(first, second)
    again = GatedMLPClassifier(random_state=np.random.RandomState(0), **kw).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(first, again)


def test_warm_start_continues_from_the_fitted_weights(capsys):
    X, y = load_breast_cancer(return_X_y=True)
    clf = GatedMLPClassifier(hidden=(8,), max_epochs=4, patience=50, lr=3e-3, warm_start=True, verbose=1,
                             random_state=2)
    clf.fit(X, y)
    first = list(clf.loss_curve_)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4 and lines[0].startswith("epoch 1: train loss ")
    assert all(b < a for a, b in zip(first, first[1:], strict=False))
    clf.fit(X, y)
    assert clf.n_iter_ == 8 and len(clf.loss_curve_) == 8 and clf.loss_curve_[:4] == first
    step = first[2] - first[3]
    assert clf.loss_curve_[4] < first[3] and abs(clf.loss_curve_[4] - (first[3] - step)) < 2 * step
    cold = GatedMLPClassifier(hidden=(8,), max_epochs=4, patience=50, lr=3e-3, random_state=2).fit(X, y)
    cold.fit(X, y)
    assert cold.n_iter_ == 4 and cold.loss_curve_ == first  # without warm_start a fit starts afresh
    with pytest.raises(ValueError, match="features"):
        clf.fit(X[:, :5], y)


def test_divergence_is_an_error_naming_the_epoch_and_the_setting():
    X, y = load_breast_cancer(return_X_y=True)
    with pytest.raises(ValueError, match=r"training diverged at epoch 1 \(non-finite training loss and validation "
                                         r"loss\); lower lr \(now 1e\+30\).*no epoch had a finite validation loss"):
        GatedMLPClassifier(hidden=(8,), max_epochs=5, lr=1e30, activation="tanh").fit(X, y)


def test_device_is_a_parameter_and_cuda_without_cuda_is_refused():
    import torch

    X, y = load_breast_cancer(return_X_y=True)
    clf = GatedMLPClassifier(hidden=(6,), max_epochs=2, device="auto").fit(X, y)
    assert clf.get_params()["device"] == "auto"
    assert next(clf.model_.parameters()).device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        GatedMLPClassifier(device="gpu").fit(X, y)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device is available"):
            GatedMLPClassifier(device="cuda").fit(X, y)


def test_numpy_scalar_parameters_fit_as_python_numbers_do():
    # a grid over np.arange hands out np.int64: the configs' strict fields refused it ("expected an integer")
    from sklearn.datasets import load_iris
    from sklearn.model_selection import GridSearchCV

    X, y = load_breast_cancer(return_X_y=True)
    X, y = X[:120], y[:120]
    plain = GatedMLPClassifier(hidden=(8,), max_epochs=3, batch_size=32, val_size=0.25, lr=3e-3).fit(X, y)
    numpy = GatedMLPClassifier(hidden=(np.int64(8),), max_epochs=np.int64(3), batch_size=np.int32(32),
                               val_size=np.float32(0.25), lr=np.float64(3e-3), temperature=np.float32(1.0),
                               patience=np.int16(30), verbose=np.int64(0)).fit(X, y)
    np.testing.assert_array_equal(plain.predict_proba(X), numpy.predict_proba(X))
    one = GatedMLPClassifier(hidden=8, max_epochs=3, batch_size=32, val_size=0.25, lr=3e-3).fit(X, y)
    np.testing.assert_array_equal(plain.predict_proba(X), one.predict_proba(X))  # one width, as sklearn's MLPs
    Xi, yi = load_iris(return_X_y=True)
    search = GridSearchCV(GatedMLPClassifier(hidden=(4,)), {"max_epochs": np.arange(2, 4)}, cv=2).fit(Xi, yi)
    assert search.best_params_["max_epochs"] in (2, 3)


def test_too_few_rows_for_a_stratified_validation_split_are_split_at_random():
    # 30 digits of 10 classes: 6 validation rows cannot hold every class, and scikit-learn's stratified split
    # refused with a message about its test_size; 3 rows (two classes of 1 and 2) fitted already
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    clf = GatedMLPClassifier(hidden=(8,), max_epochs=2).fit(X[:30], y[:30])
    assert clf.n_iter_ == 2 and len(clf.classes_) == 10
    GatedMLPClassifier(hidden=(4,), max_epochs=2).fit(np.eye(4), [0, 1, 0, 1])
    with pytest.raises(ValueError, match=r"val_size=0.9 of 4 rows leaves 0 for training and 4 for early stopping"):
        GatedMLPClassifier(hidden=(4,), max_epochs=2, val_size=0.9).fit(np.eye(4), [0, 1, 0, 1])


def test_the_split_is_scikit_learns_stratified_split_where_it_can_be():
    from sklearn.model_selection import train_test_split

    X, y = load_breast_cancer(return_X_y=True)
    i_tr, i_va = GatedMLPClassifier._validation_split(len(y), 0.2, 3, y)
    e_tr, e_va = train_test_split(np.arange(len(y)), test_size=0.2, random_state=3, stratify=y)
    np.testing.assert_array_equal(i_tr, e_tr)
    np.testing.assert_array_equal(i_va, e_va)


def test_a_part_of_the_split_with_no_weight_is_refused():
    # every validation row of weight 0: the weighted validation loss was 0 every epoch, so early stopping kept
    # epoch 1 and stopped, silently untrained
    X, y = load_breast_cancer(return_X_y=True)
    X, y = X[:200], y[:200]
    i_tr, i_va = GatedMLPClassifier._validation_split(len(y), 0.2, 0, y)
    for rows, part in ((i_va, "validation"), (i_tr, "training")):
        w = np.ones(len(y))
        w[rows] = 0.0
        with pytest.raises(ValueError, match=rf"sample_weight: the {len(rows)} {part} rows .* all have weight 0"):
            GatedMLPClassifier(hidden=(4,), max_epochs=2).fit(X, y, sample_weight=w)


@pytest.mark.parametrize(("params", "message"), [
    ({"random_state": -1}, r"random_state must be an integer in \[0, 2\*\*32 - 1\].*got random_state=-1"),
    ({"random_state": 2**32}, r"random_state must be an integer in \[0, 2\*\*32 - 1\]"),
    ({"candidates": "relu"}, r"candidates"),
    ({"hidden": "64"}, r"hidden must be a sequence of layer widths .*got hidden='64'"),
    ({"verbose": "x"}, r"verbose must be an integer .*got verbose='x'"),
])
def test_more_bad_parameters_name_the_parameter(params, message):
    X, y = load_breast_cancer(return_X_y=True)
    with pytest.raises(ValueError, match=message) as caught:
        GatedMLPClassifier(max_epochs=1, **params).fit(X[:60], y[:60])
    assert "train_test_split" not in str(caught.value) and "'r'" not in str(caught.value)
