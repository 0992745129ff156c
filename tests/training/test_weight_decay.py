"""``weight_decay_activations = false``: no weight decay on gate and family parameters, in both engines."""

from __future__ import annotations

import pytest
import torch

from learnact.config import ActivationConfig, RunConfig, TrainConfig
from learnact.experiment import ENGINES, prepare_splits, study_from_dict
from learnact.experiment.engines import vectorized_engine
from learnact.model import MLP, init_parameters_
from learnact.training.loop import is_activation_parameter, make_optimizer
from learnact.training.stacked import StackedMLP
from learnact.training.vectorized import _adam_step_, _decay_spans

LR, WD = 0.01, 0.1


def _model(kind: str) -> MLP:
    spec = ActivationConfig(kind=kind) if kind != "gated" else ActivationConfig(gate="layer")
    model = init_parameters_(MLP(5, (4,), 1, spec), torch.Generator().manual_seed(0))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if is_activation_parameter(name):
                p.add_(0.5)  # away from zero, so a decay term would show
    return model


def _hand_adam_first_step(p: torch.Tensor, g: torch.Tensor, wd: float) -> torch.Tensor:
    """One Adam step from zero moments: ``p - lr * m_hat / (sqrt(v_hat) + eps)`` on ``g + wd * p``."""
    d = g + wd * p
    m_hat = (0.1 * d) / (1 - 0.9)
    v_hat = (0.001 * d * d) / (1 - 0.999)
    return p - LR * m_hat / (v_hat.sqrt() + 1e-8)


@pytest.mark.parametrize("kind", ["gated", "prelu"])
@pytest.mark.parametrize("decay_activations", [True, False])
def test_the_optimizer_decays_the_activations_only_when_asked(kind, decay_activations):
    model = _model(kind)
    cfg = TrainConfig(lr=LR, weight_decay=WD, weight_decay_activations=decay_activations)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = make_optimizer(model, cfg)
    grads = {n: torch.full_like(p, 0.01) for n, p in model.named_parameters()}
    for n, p in model.named_parameters():
        p.grad = grads[n].clone()
    opt.step()
    names = [n for n in before if is_activation_parameter(n)]
    assert names, "the model has activation parameters (gate logits / PReLU slope)"
    for n, p in model.named_parameters():
        wd = WD if (decay_activations or not is_activation_parameter(n)) else 0.0
        torch.testing.assert_close(p.detach(), _hand_adam_first_step(before[n], grads[n], wd), rtol=1e-6, atol=1e-7)
    # and it is exactly Adam with a parameter group that has no weight decay
    twin = _model(kind)
    named = list(twin.named_parameters())
    groups = [{"params": [p for n, p in named if not is_activation_parameter(n)]},
              {"params": [p for n, p in named if is_activation_parameter(n)],
               "weight_decay": WD if decay_activations else 0.0}]
    ref = torch.optim.Adam(groups, lr=LR, weight_decay=WD)
    for n, p in named:
        p.grad = grads[n].clone()
    ref.step()
    for (n, p), q in zip(model.named_parameters(), twin.parameters(), strict=True):
        assert torch.equal(p, q), n


def test_the_stacked_adam_step_skips_the_activation_rows():
    models = [_model("gated"), _model("gated"), _model("gated")]
    stack = StackedMLP(models)
    before = stack.flat.clone()
    spans = _decay_spans(stack)
    for decay, wd_act in ((spans, 0.0), (None, WD)):
        stack.flat.copy_(before)
        stack.grad.fill_(0.01)
        buffers = [stack.new_buffer() for _ in range(3)]
        _adam_step_(stack.flat, stack.grad, *buffers, 1, LR, WD, decay)
        for name, view in stack.layout.views(stack.flat).items():
            start = stack.layout.views(before)[name]
            wd = wd_act if is_activation_parameter(name) else WD
            want = _hand_adam_first_step(start, torch.full_like(start, 0.01), wd)
            torch.testing.assert_close(view, want, rtol=1e-6, atol=1e-7, msg=name)


def test_both_engines_agree_bit_for_bit_without_decay_on_the_activations():
    runs = study_from_dict({
        "name": "wd", "seeds": [1, 7], "train": {"max_epochs": 8, "patience": 3, "lr": 0.01, "weight_decay": 0.01,
                                                  "weight_decay_activations": False},
        "variants": [{"name": "layer", "gate": "layer", "entropy_weight": 0.01},
                     {"name": "input", "gate": "input"},
                     {"name": "fixed", "kind": "fixed", "activation": "tanh"},
                     {"name": "prelu", "kind": "prelu"},
                     # its stacked segment zeroes terms below 1e-30 (family_segments): without decay nothing absorbs a
                     # coefficient gradient that this changed, so this is where it would show
                     {"name": "kernel", "kind": "kernel"}],
    }).runs()
    splits = prepare_splits(runs)
    seq = {t.run.run_id: t for t in ENGINES["sequential"](runs, splits)}
    vec = {t.run.run_id: t for t in vectorized_engine(runs, splits, workers=1)}
    for run_id, a in seq.items():
        b = vec[run_id]
        assert [r.to_dict() for r in a.fit.history] == [r.to_dict() for r in b.fit.history], run_id
        assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True)), run_id
    # the option changes training (logits and slopes are no longer pulled to zero)
    decayed = [r.model_copy(update={"train": r.train.model_copy(update={"weight_decay_activations": True})})
               for r in runs if r.variant == "prelu"]
    other = {t.run.seed: t for t in ENGINES["sequential"](decayed, splits)}
    for t in seq.values():
        if t.run.variant == "prelu":
            slope_free = t.model.blocks[0].activation.slope
            slope_decayed = other[t.run.seed].model.blocks[0].activation.slope
            assert not torch.equal(slope_free, slope_decayed)


def test_the_option_is_in_the_run_id_only_when_set():
    assert RunConfig(variant="v", seed=1).run_id == \
        RunConfig(variant="v", seed=1, train=TrainConfig(weight_decay_activations=True)).run_id
    assert RunConfig(variant="v", seed=1).run_id != \
        RunConfig(variant="v", seed=1, train=TrainConfig(weight_decay_activations=False)).run_id
