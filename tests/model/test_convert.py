"""convert(), freeze() and the helpers for any model: entropy_penalty, summarize, GateRecorder."""

import pytest
import torch
from torch import nn

import learnact
from learnact.config import ActivationConfig
from learnact.model import FrozenMixture, GatedActivation, GateRecorder, convert, entropy_penalty, freeze, summarize
from learnact.model.activations import FixedActivation, gate_entropy, get_candidate


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(4, 6, 3, padding=1)
        self.bn = nn.BatchNorm1d(6)
        self.act = nn.GELU()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class Net(nn.Module):
    """ReLUs inside a Sequential, a custom submodule and a ModuleList; a Linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv1d(2, 4, 3, padding=1), nn.ReLU())
        self.block = Block()
        self.mlp = nn.ModuleList([nn.Linear(6 * 5, 8), nn.ReLU(), nn.Linear(8, 3)])

    def forward(self, x):
        h = self.block(self.stem(x)).flatten(1)
        for m in self.mlp:
            h = m(h)
        return h


def _per_neuron(width, dim):
    return GatedActivation(("relu", "tanh"), gate="neuron", width=width, dim=dim)


def test_convert_replaces_every_nested_activation_and_keeps_the_output_shape():
    torch.manual_seed(0)
    net = Net()
    x = torch.randn(5, 2, 5)
    before = net(x)
    new, replaced = convert(net, _per_neuron)
    assert [(r.path, r.old_type, r.width, r.dim) for r in replaced] == [
        ("stem.1", nn.ReLU, 4, 1), ("block.act", nn.GELU, 6, 1), ("mlp.1", nn.ReLU, 8, -1)]
    assert not any(isinstance(m, (nn.ReLU, nn.GELU)) for m in new.modules())
    assert new.stem[1] is replaced[0].new and new.block.act is replaced[1].new and new.mlp[1] is replaced[2].new
    assert new(x).shape == before.shape
    # the original is untouched (inplace=False), and still computes what it did
    assert isinstance(net.stem[1], nn.ReLU) and isinstance(net.block.act, nn.GELU) and isinstance(net.mlp[1], nn.ReLU)
    assert torch.equal(net(x), before)


def test_a_converted_relu_mixture_with_relu_selected_equals_the_original():
    torch.manual_seed(1)
    net = Net().eval()
    x = torch.randn(3, 2, 5)
    new, replaced = convert(net, _per_neuron)
    with torch.no_grad():
        for r in replaced:
            r.new.logits.copy_(torch.tensor([30.0, -30.0]))  # all weight on relu
    new.block.act = nn.ReLU()
    net.block.act = nn.ReLU()
    assert torch.allclose(new(x), net(x), atol=1e-6)


def test_inplace_and_sample_input_widths():
    torch.manual_seed(2)
    net = nn.Sequential(nn.Flatten(), nn.Tanh(), nn.Linear(12, 4), nn.SiLU())
    with pytest.raises(ValueError, match=r"cannot infer the width of '1' \(Tanh\).*pass sample_input"):
        convert(net, _per_neuron)
    x = torch.randn(2, 3, 4)
    same, replaced = convert(net, _per_neuron, inplace=True, sample_input=x)
    assert same is net and isinstance(net[1], GatedActivation)
    assert [(r.path, r.width, r.dim) for r in replaced] == [("1", 12, -1), ("3", 4, -1)]
    assert net(x).shape == (2, 4)


def test_sample_input_reads_feature_map_layouts_and_keeps_batchnorm_stats():
    net = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU())
    stats = net[1].running_mean.clone()
    new, replaced = convert(net, _per_neuron, sample_input=torch.randn(2, 1, 6, 6))
    assert (replaced[0].width, replaced[0].dim) == (3, 1)
    assert torch.equal(new[1].running_mean, stats) and new.training


def test_activation_as_config_or_name():
    net = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2), nn.ReLU())
    cfg = ActivationConfig(kind="gated", gate="neuron", candidates=("relu", "sin"))
    new, replaced = convert(net, cfg)
    assert all(isinstance(r.new, GatedActivation) and r.new.logits.shape == (5 if i == 0 else 2, 2)
               for i, r in enumerate(replaced))
    new, replaced = convert(net, "prelu")
    assert [type(r.new).__name__ for r in replaced] == ["PReLU", "PReLU"]
    new, replaced = convert(net, "tanh")
    x = torch.randn(4, 3)
    assert torch.equal(new(x), torch.tanh(net[2](torch.tanh(net[0](x)))))
    with pytest.raises(ValueError, match=r"activation 'relux' is neither a family"):
        convert(net, "relux")


def test_freeze_blend_equals_the_gated_output_exactly():
    torch.manual_seed(3)
    net = nn.Sequential(nn.Conv1d(2, 4, 3), GatedActivation(("relu", "tanh", "sin"), gate="neuron", width=4, dim=1),
                        nn.Flatten(), nn.Linear(8, 3), GatedActivation(("relu", "tanh", "sin")))
    with torch.no_grad():
        net[1].logits.copy_(torch.randn(4, 3))
        net[4].logits.copy_(torch.randn(3))
    x = torch.randn(5, 2, 4)
    frozen = freeze(net, "blend")
    assert isinstance(frozen[1], FrozenMixture) and isinstance(frozen[4], FrozenMixture)
    assert not any(p.requires_grad for m in (frozen[1], frozen[4]) for p in m.parameters())
    assert torch.equal(frozen(x), net(x))


def test_freeze_argmax_applies_each_units_argmax_candidate():
    torch.manual_seed(4)
    names = ("relu", "tanh", "sin")
    per_unit = GatedActivation(names, gate="neuron", width=4, dim=1)
    layer = GatedActivation(names)
    with torch.no_grad():
        per_unit.logits.copy_(torch.tensor([[3.0, 0, 0], [0, 3, 0], [0, 0, 3], [0, 3, 0]]))
        layer.logits.copy_(torch.tensor([0.0, 0.0, 1.0]))
    net = nn.Sequential(per_unit, layer)
    frozen = freeze(net, "argmax")
    assert isinstance(frozen[1], FixedActivation) and frozen[1].name == "sin"
    x = torch.randn(2, 4, 5)
    fns = [get_candidate(n) for n in names]
    want = torch.stack([fns[k](x[:, ch]) for ch, k in enumerate([0, 1, 2, 1])], dim=1)
    assert torch.equal(frozen[0](x), want)
    assert torch.equal(frozen(x), torch.sin(want))


def test_input_gates_cannot_be_frozen():
    net = nn.Sequential(nn.Linear(3, 4), GatedActivation(gate="input", width=4))
    with pytest.raises(ValueError, match=r"cannot freeze '1': its gate is input-dependent"):
        freeze(net)


def test_entropy_penalty_sums_gate_entropies_and_reaches_the_logits():
    torch.manual_seed(5)
    a = GatedActivation(("relu", "tanh"), gate="neuron", width=4)
    b = GatedActivation(("relu", "tanh", "sin"))
    c = GatedActivation(("relu", "sin"), gate="input", width=4)
    net = nn.Sequential(nn.Linear(3, 4), a, nn.Linear(4, 4), c, nn.Linear(4, 3), b)
    with torch.no_grad():
        a.logits.copy_(torch.randn(4, 2))
        b.logits.copy_(torch.randn(3))
    with pytest.raises(ValueError, match=r"input-dependent gate '3' has not run a forward pass"):
        entropy_penalty(net)
    x = torch.randn(6, 3)
    net(x)
    h3 = net[2](net[1](net[0](x)))
    by_hand = (gate_entropy(torch.softmax(a.logits, -1)).mean() + gate_entropy(torch.softmax(b.logits, -1)).mean()
               + gate_entropy(torch.softmax(c.head(h3), -1)).mean())
    got = entropy_penalty(net)
    assert torch.allclose(got, by_hand, atol=1e-6)
    got.backward()
    assert a.logits.grad is not None and a.logits.grad.abs().sum() > 0
    assert b.logits.grad is not None and b.logits.grad.abs().sum() > 0
    assert all(p.grad is not None for p in c.head.parameters())
    assert float(entropy_penalty(nn.Linear(2, 2))) == 0.0


def test_summarize_lists_learnable_activations():
    net, _ = convert(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2), nn.ReLU()), _per_neuron)
    net[3] = learnact.model.get_family("prelu")(width=2, granularity="unit")
    rows = summarize(net)
    assert [(r["path"], r["kind"], r["width"], r["n_parameters"]) for r in rows] == [
        ("1", "neuron", 4, 8), ("3", "prelu", 2, 2)]
    assert rows[0]["weights"] == {"relu": 0.5, "tanh": 0.5} and rows[0]["candidates"] == ["relu", "tanh"]
    text = str(rows)
    assert "neuron" in text and "prelu" in text and text.splitlines()[0].startswith("path")


def test_gate_recorder_in_a_users_own_training_loop():
    torch.manual_seed(6)
    net, _ = convert(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1), nn.Tanh()),
                     lambda width, dim: GatedActivation(("relu", "tanh"), gate="neuron" if width == 4 else "layer",
                                                        width=width, dim=dim))
    rec = GateRecorder(net)
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    x, y = torch.randn(32, 3), torch.randn(32, 1)
    snapshots = {}
    for epoch in range(3):
        opt.zero_grad()
        loss = ((net(x) - y) ** 2).mean() + 0.01 * entropy_penalty(net)
        loss.backward()
        opt.step()
        rec.record(epoch)
        snapshots[epoch] = (net[1].gate_weights().detach().clone(), net[3].gate_weights().detach().clone())
    rows = rec.rows()
    assert len(rows) == 3 * (4 * 2 + 2)
    for r in rows:
        per_unit, layer = snapshots[r["epoch"]]
        k = ("relu", "tanh").index(r["candidate"])
        want = per_unit[r["unit"], k] if r["path"] == "1" else layer[k]
        assert r["weight"] == pytest.approx(float(want), abs=1e-7)
    assert not torch.equal(snapshots[0][0], snapshots[2][0])  # the weights did move
    frame = rec.to_frame()
    assert list(frame.columns) == ["epoch", "path", "unit", "candidate", "weight"] and len(frame) == len(rows)


def test_package_root_exports_the_dropin_helpers():
    assert learnact.convert is convert and learnact.freeze is freeze and learnact.summarize is summarize
    assert learnact.entropy_penalty is entropy_penalty and learnact.GateRecorder is GateRecorder
