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
    with pytest.raises(ValueError, match=r"input-dependent gate '3' holds no weights of a forward pass"):
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


# -- models and arguments a practitioner brings ------------------------------------------------------------


def test_a_converted_transformer_layer_uses_its_learned_activation_in_inference_too():
    # PyTorch's fused inference path (eval mode, no grad) computed the GELU the layer was built with, not the
    # module put in its place: training used the learned activation, inference silently did not
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16, activation=nn.GELU(),
                                       batch_first=True)
    model, replaced = convert(layer, "prelu")
    assert [r.path for r in replaced] == ["activation"]
    with torch.no_grad():
        model.activation.slope.fill_(3.0)  # far from GELU
    model.eval()
    x = torch.randn(2, 5, 8)
    with torch.no_grad():
        inference = model(x)
    assert torch.allclose(inference, model(x), atol=1e-6)  # the path with autograd runs the module
    stack = nn.TransformerEncoder(model, num_layers=2, enable_nested_tensor=False).eval()
    with torch.no_grad():
        fast = stack(x)
    assert torch.allclose(fast, stack(x), atol=1e-5)


def test_converting_a_converted_model_leaves_learnacts_own_modules_alone():
    # an input gate's gating head holds a ReLU: a second convert replaced it, inside the gate
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    once, _ = convert(model, ActivationConfig(gate="input"))
    twice, replaced = convert(once, "prelu")
    assert replaced == [] and str(twice) == str(once)
    mlp = learnact.MLP(4, (8,), 1, ActivationConfig(gate="input"))
    assert convert(mlp, "prelu")[1] == []
    beside = nn.Sequential(nn.Linear(4, 8), GatedActivation(("relu", "tanh"), gate="input", width=8),
                           nn.Linear(8, 8), nn.ReLU())
    assert [r.path for r in convert(beside, "prelu")[1]] == ["3"]


def test_sample_input_gives_each_place_of_a_shared_module_its_own_width():
    # one ReLU instance after layers of 8 and 6 units: the hook counted both calls against both places
    act = nn.ReLU()
    model = nn.Sequential(nn.Linear(4, 8), act, nn.Linear(8, 6), act, nn.Linear(6, 1))
    by_layers = convert(model, ActivationConfig(gate="neuron"))[1]
    by_forward = convert(model, ActivationConfig(gate="neuron"), sample_input=torch.randn(2, 4))[1]
    assert [(r.path, r.width) for r in by_forward] == [(r.path, r.width) for r in by_layers] == [("1", 8), ("3", 6)]
    assert model[1] is act and model[3] is act  # the model probed is put back as it was
    x = torch.randn(3, 4)
    converted = convert(model, ActivationConfig(gate="neuron"), sample_input=x)[0]
    assert converted(x).shape == (3, 1)


def test_freeze_replaces_every_place_of_a_shared_gate():
    act = GatedActivation(("relu", "tanh"))
    model = nn.Sequential(nn.Linear(4, 8), act, nn.Linear(8, 8), act, nn.Linear(8, 1))
    x = torch.randn(3, 4)
    for mode in ("argmax", "blend"):
        frozen = freeze(model, mode)
        assert not any(isinstance(m, GatedActivation) for m in frozen.modules())
        assert not any("logits" in name for name, _ in frozen.named_parameters())
    assert torch.allclose(freeze(model, "blend")(x), model(x))


def test_a_model_that_is_one_activation_is_converted():
    new, replaced = convert(nn.ReLU(), "prelu")
    assert isinstance(new, learnact.model.get_family("prelu")) and [(r.path, r.old_type) for r in replaced] == [
        ("", nn.ReLU)]
    new, replaced = convert(nn.GELU(), ActivationConfig(gate="neuron"), sample_input=torch.randn(2, 5))
    assert isinstance(new, GatedActivation) and replaced[0].width == 5


def test_a_model_converted_in_eval_mode_stays_in_eval_mode():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1)).eval()
    converted, _ = convert(model, lambda width, dim: nn.Sequential(nn.Dropout(0.5), nn.GELU()))
    assert not any(m.training for m in converted.modules())
    x = torch.randn(16, 4)
    assert torch.equal(converted(x), converted(x))


def test_types_may_be_one_class_and_a_candidate_may_be_an_import_path():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.Tanh())
    assert [r.path for r in convert(model, "prelu", types=nn.ReLU)[1]] == ["1"]
    converted, replaced = convert(model, "torch.nn.functional:hardswish")
    assert [r.path for r in replaced] == ["1", "3"]
    x = torch.randn(3, 4)
    assert torch.equal(converted[1](x), nn.functional.hardswish(x))


@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda m: convert(m, nn.PReLU()), TypeError, r"activation is the module PReLU\(\); .*pass a factory"),
    (lambda m: convert(m, GatedActivation), TypeError, r"activation is the class GatedActivation; .*factory"),
    (lambda m: convert(m, lambda w, d: 3), TypeError, r"returned int for '1', not an nn.Module"),
    (lambda m: convert(m, "Relu"), ValueError, r"activation 'Relu' is neither .*\(did you mean 'relu'\?\)"),
    (lambda m: convert(m, "prelu", types=[nn.ReLU, "gelu"]), TypeError, r"types must be nn.Module classes"),
    (lambda m: convert("not a model", "prelu"), TypeError, r"convert: model must be a torch.nn.Module, got str"),
    (lambda m: freeze("x"), TypeError, r"freeze: model must be a torch.nn.Module, got str"),
    (lambda m: entropy_penalty("x"), TypeError, r"model must be a torch.nn.Module, got str"),
    (lambda m: summarize(["x"]), TypeError, r"summarize: model must be a torch.nn.Module, got list"),
    (lambda m: GatedActivation("relu"), ValueError, r"got the string 'relu'; write candidates=\('relu',\)"),
])
def test_bad_arguments_are_one_line_naming_the_value_and_the_fix(call, error, message):
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    with pytest.raises(error, match=message) as info:
        call(model)
    assert "\n" not in str(info.value)


def test_sample_input_of_a_sequence_keeps_the_unit_axis_of_the_preceding_linear():
    # (N, T, F) into a Linear: the rule "axis 1 for inputs of more than two dimensions" took the time axis
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    x = torch.randn(2, 10, 4)
    converted, replaced = convert(model, ActivationConfig(gate="neuron"), sample_input=x)
    assert [(r.width, r.dim) for r in replaced] == [(8, -1)]
    assert converted(torch.randn(3, 7, 4)).shape == (3, 7, 2)  # any sequence length
    cnn = nn.Sequential(nn.Conv1d(3, 5, 3), nn.ReLU())  # feature maps keep the channel axis
    assert [(r.width, r.dim) for r in convert(cnn, ActivationConfig(gate="neuron"),
                                              sample_input=torch.randn(2, 3, 5))[1]] == [(5, 1)]


def test_sample_input_reaches_a_transformer_layers_activation():
    # in eval mode without grad the fused path did not call the activation, so no width was read
    layer = nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16, activation=nn.GELU(),
                                       batch_first=True)
    x = torch.randn(2, 5, 8)
    converted, replaced = convert(layer, ActivationConfig(gate="neuron"), sample_input=x, dim=-1)
    assert [(r.width, r.dim) for r in replaced] == [(16, -1)]
    assert layer.activation_relu_or_gelu == 2  # the original is left as it was
    converted.eval()
    with torch.no_grad():
        assert torch.allclose(converted(x), converted(x.clone().requires_grad_(True)), atol=1e-6)


def test_an_input_gate_under_vmap_keeps_no_weights_that_escape_it():
    # the vmapped forward's weights were kept as last_weights, and entropy_penalty later failed with PyTorch's
    # "your tensor may have escaped from inside a function being vmapped"
    torch.manual_seed(0)
    gate = GatedActivation(("relu", "tanh"), gate="input", width=3)
    x = torch.randn(5, 3)
    batched = torch.func.vmap(gate)(x)
    assert gate.last_weights is None
    assert torch.allclose(batched, gate(x), atol=1e-6)  # the same function, sample by sample
    with pytest.raises(ValueError, match=r"holds no weights of a forward pass .*inside torch.func transforms"):
        gate.last_weights = None
        torch.func.vmap(gate)(x)
        entropy_penalty(nn.Sequential(gate))
    gate(x)
    assert entropy_penalty(nn.Sequential(gate)).item() > 0


@pytest.mark.parametrize("batch_first", [True, False])
def test_sample_input_reads_a_transformers_activation_width_from_the_layer_that_ran_before_it(batch_first):
    # linear2 (8 units) is registered before the activation and linear1 (16) runs before it: the pass took the
    # sequence or the batch axis as the units (5 on dim 1), silently where it was the batch
    layer = nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16, activation=nn.GELU(),
                                       batch_first=batch_first)
    stack = nn.TransformerEncoder(layer, num_layers=1, enable_nested_tensor=False)
    x = torch.randn(3, 5, 8) if batch_first else torch.randn(5, 3, 8)
    converted, replaced = convert(stack, "spline", sample_input=x)
    assert [(r.width, r.dim) for r in replaced] == [(16, -1)]
    longer = torch.randn(3, 7, 8) if batch_first else torch.randn(7, 3, 8)
    assert converted(longer).shape == longer.shape


def test_a_module_called_at_two_widths_is_refused_only_where_the_width_matters():
    # a torchvision-style bottleneck calls one self.relu after 4, 4 and 16 channels
    class Bottleneck(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2, self.conv3 = nn.Conv2d(16, 4, 1), nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 16, 1)
            self.relu = nn.ReLU(inplace=True)

        def forward(self, x):
            return self.relu(self.conv3(self.relu(self.conv2(self.relu(self.conv1(x))))) + x)

    x = torch.randn(2, 16, 5, 5)
    for activation in ("tanh", "prelu", ActivationConfig(gate="layer")):
        converted, replaced = convert(Bottleneck(), activation, sample_input=x)
        assert [r.path for r in replaced] == ["relu"] and converted(x).shape == x.shape
    with pytest.raises(ValueError, match=r"module 'relu' is called on inputs with different sizes on axis 1 "
                                         r"\(\[4, 16\]\); give each call its own module"):
        convert(Bottleneck(), ActivationConfig(gate="neuron"), sample_input=x)
