// One training step of a stacked model in C++: learnact's native step.
//
// This is the step of learnact/training/vectorized.py (the mini-batch gather,
// StackedMLP.forward with a tape, task_and_gradient, backward_, _adam_step_,
// step_entropies) and its per-epoch evaluation (member_task_loss,
// gate_summary) written against ATen's C++ API: the same kernels, called with
// the same arguments in the same order, so every value is bit for bit the one
// the Python step computes; element-wise chains are fused into loops only
// where calibrate() finds ATen's own formulation (see "Fused element-wise
// kernels" below). It exists
// because a stacked step launches a few hundred small kernels, and calling
// them from C++ costs a fraction of calling them from Python. The candidate
// activations are ATen operations named by a code (candidate() below);
// native.py derives each registered candidate's code by checking it against
// these kernels. Python builds the stack description once per compaction
// (native.py: StackDescription) and passes it with every call.
//
// Layout of the arguments (built by native.py: NativeStack):
//   tensors: per Linear (hidden layers, then the head) W, b, gW, gb; then
//            flat, grad, exp_avg, exp_avg_sq, denom; then per segment: lam
//            (if lam_mode >= 1), on (if lam_mode == 2), then per hidden layer,
//            if gated: T, the gate parameters, their gradient views; if a
//            learnable family: its parameters (broadcast views, in the
//            family's order below), their gradient views, its float64
//            hyper-parameters (1-D), its extra tensors.
//   spec:    kSpecVersion, n_hidden, n_segments, then per segment: size,
//            lam_mode, then per hidden layer: kind (0 fixed, 1 layer,
//            2 neuron, 3 input, 4 family), source (0 network, 1 layer),
//            n_candidates, candidate codes... (plus kCandidates for a
//            candidate that reads the contiguous stack: Unit::stack), and for a family: its code
//            (Family below), n_params, n_extra, n_ints, ints...
//   choices: (kind, b, i, o, choice) quintuples: the product formulation
//            _products.py chose for each shape (kind 0 forward, 1 weight
//            gradient, 2 input gradient).
//   ranges:  (offset, length) pairs of the flat buffers the fused Adam
//            updates (all but the dummy gate rows); empty: all of them.

#include <ATen/ATen.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/LegacyTypeDispatch.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

namespace {

constexpr int64_t kAlignBytes = 64;
constexpr int64_t kAlign = kAlignBytes / 4;
constexpr int64_t kChunk = 32;

enum Kind : int64_t { kFixed = 0, kLayer = 1, kNeuron = 2, kInput = 3, kFamily = 4 };

// The learnable families the step runs (family_segments.py: FamilyOps.native_step_args gives each one's
// arguments), with their parameters in this order: kernel (alpha, tails; hp: -gamma, floor; extra: dictionary),
// spline (coefficients, base_weight, spline_weight; ints: the base's candidate code; extra: knots), rational
// (numerator, denominator), pwl (values, per layer; hp: lo, step), prelu (slope), swish (beta), maxout (slopes,
// offsets), neural (inner.weight, inner.bias, outer.weight, outer.bias, per layer; its products need choices for
// (b * width, 1, h) and (b * width, h, 1)).
enum Family : int64_t { kKernelFamily = 0, kSplineFamily = 1, kRationalFamily = 2, kPwlFamily = 3, kPreluFamily = 4,
                        kSwishFamily = 5, kMaxoutFamily = 6, kNeuralFamily = 7, kFamilies = 8 };

// The layout of the stack description (spec) this source reads; native.py's SPEC_VERSION must match.
constexpr int64_t kSpecVersion = 4;

// Candidate codes: 0 .. kCandidates - 1 (candidate() and candidate_backward()).
constexpr int64_t kCandidates = 8;

bool aligned(const at::Tensor& t) {
  return reinterpret_cast<std::uintptr_t>(t.data_ptr()) % kAlignBytes == 0;
}

// _products.aligned_members
at::Tensor aligned_members(const at::Tensor& t) {
  if (t.is_contiguous() && aligned(t) && t.stride(0) % kAlign == 0 &&
      (t.size(0) > 1 || t.numel() % kAlign == 0)) {
    return t;
  }
  const int64_t K = t.size(0);
  const int64_t per = t.numel() / K;
  const int64_t padded = (per + kAlign - 1) / kAlign * kAlign;
  at::Tensor buf = at::empty({K, padded}, t.options()).narrow(1, 0, per);
  buf.copy_(t.reshape({K, per}));
  return buf.view(t.sizes());
}

// stacked.member_rows
at::Tensor member_rows(const at::Tensor& t) {
  const int64_t K = t.size(0);
  const int64_t per = t.numel() / K;
  if (per % kChunk == 0 && t.is_contiguous()) return t;
  return at::constant_pad_nd(t.reshape({K, per}), {0, 1}, 0).narrow(1, 0, per).view(t.sizes());
}

struct Choices {
  std::vector<int64_t> table;
  int64_t get(int64_t kind, int64_t b, int64_t i, int64_t o) const {
    for (size_t k = 0; k + 4 < table.size(); k += 5) {
      if (table[k] == kind && table[k + 1] == b && table[k + 2] == i && table[k + 3] == o) return table[k + 4];
    }
    TORCH_CHECK(false, "learnact native step: no product choice for kind ", kind, " shape (", b, ", ", i, ", ", o,
                ")");
  }
};

// The per-member loop of _products for a shape no batched formulation reproduces (choice -1): kind 0
// linear(a[k], b[k], bias[k]) (forward), 1 a[k]^T b[k] (weight gradient), 2 a[k] b[k] (input gradient), each
// member's product into a fresh tensor as a lone model's, stacked. The native step's fallback and, as the op
// member_products, the Python step's.
at::Tensor member_products(int64_t kind, const at::Tensor& a, const at::Tensor& b, const at::Tensor& bias) {
  at::AutoDispatchBelowADInplaceOrView guard;
  TORCH_CHECK(kind >= 0 && kind <= 2 && a.dim() == 3 && b.dim() == 3 && a.size(0) == b.size(0),
              "member_products: kind 0-2 and (K, ., .) operands");
  std::vector<at::Tensor> outs;
  outs.reserve(a.size(0));
  for (int64_t k = 0; k < a.size(0); ++k) {
    if (kind == 0) outs.push_back(at::linear(a[k], b[k], bias[k]));
    else if (kind == 1) outs.push_back(a[k].t().mm(b[k]));
    else outs.push_back(a[k].mm(b[k]));
  }
  return at::stack(outs);
}

// _products.linear
at::Tensor linear(const Choices& ch, at::Tensor x, at::Tensor w, const at::Tensor& b) {
  x = aligned_members(x);
  w = aligned_members(w);
  const int64_t choice = ch.get(0, x.size(1), x.size(2), w.size(1));
  if (choice == 0) return at::baddbmm(b.unsqueeze(1), x, w.transpose(1, 2));
  if (choice == 1) return (at::bmm(w, x.transpose(1, 2)) + b.unsqueeze(2)).transpose(1, 2);
  if (choice == 2 && x.size(2) == 1) return at::addcmul(b.unsqueeze(1), x, w.transpose(1, 2));
  return member_products(0, x, w, b);
}

// _products.weight_grad_
void weight_grad_(const Choices& ch, at::Tensor grad, at::Tensor x, at::Tensor& out) {
  grad = aligned_members(grad);
  x = aligned_members(x);
  const int64_t choice = ch.get(1, grad.size(1), x.size(2), grad.size(2));
  if (choice == 0 && out.is_contiguous() && aligned(out)) {
    at::bmm_out(out, grad.transpose(1, 2), x);
  } else if (choice == 0) {
    at::Tensor tmp = at::empty({grad.size(0), grad.size(2), x.size(2)}, grad.options());
    out.copy_(at::bmm_out(tmp, grad.transpose(1, 2), x));
  } else if (choice == 1) {
    out.copy_(at::bmm(x.transpose(1, 2), grad).transpose(1, 2));
  } else {
    out.copy_(member_products(1, grad, x, {}));
  }
}

// _products.input_grad
at::Tensor input_grad(const Choices& ch, at::Tensor grad, at::Tensor w) {
  grad = aligned_members(grad);
  w = aligned_members(w);
  const int64_t choice = ch.get(2, grad.size(1), w.size(2), grad.size(2));
  if (choice >= 0) return at::bmm(grad, w);
  return member_products(2, grad, w, {});
}

// The candidates of learnact.model.activations.candidates, by code (native.py: _CODES).
at::Tensor candidate(int64_t code, const at::Tensor& z) {
  switch (code) {
    case 0: return at::relu(z);
    case 1: return at::tanh(z);
    case 2: return at::sigmoid(z);
    case 3: return at::gelu(z);
    case 4: return at::silu(z);
    case 5: return at::softplus(z, 1, 20);
    case 6: return at::leaky_relu(z, 0.01);
    case 7: return z;
  }
  TORCH_CHECK(false, "learnact native step: unknown candidate code ", code);
}

// Their registered derivatives (the kernels autograd calls).
at::Tensor candidate_backward(int64_t code, const at::Tensor& g, const at::Tensor& z, const at::Tensor& y) {
  switch (code) {
    case 0: return at::threshold_backward(g, y, 0);
    case 1: return at::tanh_backward(g, y);
    case 2: return at::sigmoid_backward(g, y);
    case 3: return at::gelu_backward(g, z);
    case 4: return at::silu_backward(g, z);
    case 5: return at::softplus_backward(g, z, 1, 20);
    case 6: return at::leaky_relu_backward(g, z, 0.01, false);
    case 7: return g;
  }
  TORCH_CHECK(false, "learnact native step: unknown candidate code ", code);
}

struct Unit {
  int64_t kind = kFixed;
  int64_t source = 0;
  std::vector<int64_t> codes;
  // per candidate: it reads the members' values as one contiguous stack, not member_rows's padded rows
  // (stacked.reads_stack)
  std::vector<char> stack;
  at::Tensor temperature;
  std::vector<at::Tensor> params, grads;
  // a learnable family's (kFamily): its code, float64 hyper-parameters, integer ones and extra tensors
  int64_t family = -1;
  std::vector<double> hp;
  std::vector<int64_t> ints;
  std::vector<at::Tensor> extra;
};

// stacked.candidate_input: candidate k's input, z (from member_rows) or a contiguous copy of it
at::Tensor candidate_input(const Unit& u, size_t k, const at::Tensor& z) {
  return u.stack[k] ? z.contiguous() : z;
}

struct Segment {
  int64_t size = 0;
  int64_t lam_mode = 0;  // 0: no entropy term, 1: every member has one, 2: those where `on`
  at::Tensor lam, on;
  std::vector<Unit> units;  // per hidden layer
};

struct Linear {
  at::Tensor w, b, gw, gb;
};

struct Stack {
  std::vector<Linear> linears;  // hidden layers, then the head
  at::Tensor flat, grad, exp_avg, exp_avg_sq, denom;
  std::vector<Segment> segments;
  std::vector<int64_t> sizes;
  bool network_context = false;
  std::vector<bool> layer_context;
  Choices choices;

  Stack(const std::vector<at::Tensor>& t, const std::vector<int64_t>& spec, std::vector<int64_t> table) {
    choices.table = std::move(table);
    size_t p = 0, q = 0;
    TORCH_CHECK(!spec.empty() && spec[0] == kSpecVersion, "learnact native step: stack description version ",
                spec.empty() ? -1 : spec[0], ", this library reads version ", kSpecVersion);
    ++p;
    const int64_t n_hidden = spec[p++];
    const int64_t n_seg = spec[p++];
    for (int64_t l = 0; l <= n_hidden; ++l) {
      linears.push_back({t[q], t[q + 1], t[q + 2], t[q + 3]});
      q += 4;
    }
    flat = t[q++];
    grad = t[q++];
    exp_avg = t[q++];
    exp_avg_sq = t[q++];
    denom = t[q++];
    layer_context.assign(n_hidden, false);
    for (int64_t s = 0; s < n_seg; ++s) {
      Segment seg;
      seg.size = spec[p++];
      seg.lam_mode = spec[p++];
      if (seg.lam_mode >= 1) seg.lam = t[q++];
      if (seg.lam_mode == 2) seg.on = t[q++];
      for (int64_t l = 0; l < n_hidden; ++l) {
        Unit u;
        u.kind = spec[p++];
        u.source = spec[p++];
        const int64_t n_c = spec[p++];
        for (int64_t c = 0; c < n_c; ++c) {
          TORCH_CHECK(spec[p] >= 0 && spec[p] < 2 * kCandidates, "learnact native step: unknown candidate code ",
                      spec[p]);
          u.codes.push_back(spec[p] % kCandidates);
          u.stack.push_back(spec[p++] >= kCandidates);
        }
        if (u.kind == kFamily) {
          u.family = spec[p++];
          TORCH_CHECK(u.family >= 0 && u.family < kFamilies, "learnact native step: unknown family code ", u.family);
          const int64_t n_params = spec[p++], n_extra = spec[p++], n_ints = spec[p++];
          for (int64_t k = 0; k < n_ints; ++k) u.ints.push_back(spec[p++]);
          for (int64_t k = 0; k < n_params; ++k) u.params.push_back(t[q++]);
          for (int64_t k = 0; k < n_params; ++k) u.grads.push_back(t[q++]);
          const at::Tensor hp = t[q++].contiguous();
          TORCH_CHECK(hp.scalar_type() == at::kDouble && hp.dim() == 1, "learnact native step: family hp (float64)");
          u.hp.assign(hp.data_ptr<double>(), hp.data_ptr<double>() + hp.numel());
          for (int64_t k = 0; k < n_extra; ++k) u.extra.push_back(t[q++]);
        } else if (u.kind != kFixed) {
          u.temperature = t[q++];
          const int64_t n_params = u.kind == kInput ? 4 : 1;
          for (int64_t k = 0; k < n_params; ++k) u.params.push_back(t[q++]);
          for (int64_t k = 0; k < n_params; ++k) u.grads.push_back(t[q++]);
        }
        if (u.kind == kInput && u.source == 0) network_context = true;
        if (u.kind == kInput && u.source == 1) layer_context[l] = true;
        seg.units.push_back(std::move(u));
      }
      sizes.push_back(seg.size);
      segments.push_back(std::move(seg));
    }
    TORCH_CHECK(q == t.size() && p == spec.size(), "learnact native step: malformed stack description");
  }
};

// One segment's record of one hidden layer (stacked.Tape.records).
struct Record {
  at::Tensor z;
  std::vector<at::Tensor> outs;
  at::Tensor w, g, context, head_hidden;
  std::vector<at::Tensor> saved;  // a family's: what its backward reads
};

struct Tape {
  std::vector<at::Tensor> inputs;
  std::vector<std::vector<Record>> records;
};

// stacked._broadcast_weights
at::Tensor broadcast_weights(const at::Tensor& g, int64_t kind) {
  if (kind == kLayer) return g.view({g.size(0), 1, 1, g.size(1)});
  if (kind == kNeuron) return g.unsqueeze(1);
  return g.unsqueeze(-2);
}

// StackedMLP.gate_weights (softmax_gate: softmax(logits / T))
at::Tensor gate_weights(const Stack& st, const Unit& u, const at::Tensor& context, Record* rec) {
  if (u.kind != kInput) return at::softmax(at::div(u.params[0], u.temperature), -1);
  at::Tensor hidden = at::relu(linear(st.choices, context, u.params[0], u.params[1]));
  if (rec != nullptr) {
    rec->context = context;
    rec->head_hidden = hidden;
  }
  return at::softmax(at::div(linear(st.choices, hidden, u.params[2], u.params[3]), u.temperature), -1);
}

// mix_candidates on precomputed outputs: w0 f0, then + w1 f1, ...
at::Tensor mix(const at::Tensor& w, const std::vector<at::Tensor>& outs) {
  at::Tensor out = at::mul(w.select(-1, 0), outs[0]);
  for (size_t k = 1; k < outs.size(); ++k) out = at::add(out, at::mul(w.select(-1, static_cast<int64_t>(k)), outs[k]));
  return out;
}

// stacked_backward._entropy_grad
at::Tensor entropy_grad(const at::Tensor& g, const at::Tensor& lam, int64_t kind) {
  at::Tensor top = kind == kLayer ? at::neg(lam.unsqueeze(1)) : at::neg(at::div(lam, g.size(1)).view({-1, 1, 1}));
  top = top.expand_as(g);
  return at::add(at::mul(top, at::special_xlogy(at::ne(g, 0), g)), at::div(at::mul(top, g), g));
}

// ---------------------------------------------------------------------------
// Fused element-wise kernels. A gated layer's mixture (w0 f0 + w1 f1 + ...),
// the gradient of its pre-activation (the candidates' derivatives of
// grad * w_k, added last to first) and the Adam update are each one loop here
// instead of 5 to 11 ATen calls. They perform the same IEEE operations in the
// same order (this file is compiled with -ffp-contract=off: no fused
// multiply-add unless written, as std::fma, where ATen's vectorised kernel
// uses one). Which formulation ATen's kernels use is not assumed: calibrate()
// runs each ATen kernel on random data and keeps, per operation, the first
// formulation that agrees bit for bit on every value; an operation without one
// is not fused (the ATen calls above are used instead).

struct Formulations {
  int tanh_bw = -1, sigmoid_bw = -1, add_alpha = -1, lerp = -1, addcmul = -1, div_scalar = -1, addcdiv = -1;
  bool mix = false;
  bool activation() const { return mix && tanh_bw >= 0 && sigmoid_bw >= 0; }
  bool adam() const { return add_alpha >= 0 && lerp >= 0 && addcmul >= 0 && div_scalar >= 0 && addcdiv >= 0; }
};
Formulations g_form;
bool g_fuse = false;  // set by calibrate(enable=True) once the formulations are known

inline float tanh_bw(int v, float g, float y) { return v == 0 ? g * (1.0f - y * y) : g * std::fma(-y, y, 1.0f); }
inline float sigmoid_bw(int v, float g, float y) { return v == 0 ? (g * (1.0f - y)) * y : g * ((1.0f - y) * y); }
inline float add_alpha(int v, float a, float b, float alpha) { return v == 0 ? std::fma(b, alpha, a) : a + alpha * b; }
inline float lerp(int v, float s, float e, float w) {
  // ATen: weights below 0.5 interpolate from the start, others from the end
  if (v == 0) return std::fabs(w) < 0.5f ? std::fma(w, e - s, s) : std::fma(w - 1.0f, e - s, e);
  return std::fabs(w) < 0.5f ? s + w * (e - s) : e - (e - s) * (1.0f - w);
}
inline float addcmul(int v, float s, float a, float b, float value) {
  if (v == 0) return s + value * a * b;
  if (v == 1) return std::fma(value * a, b, s);
  return s + a * b * value;
}
inline float div_scalar(int v, float a, float b) { return v == 0 ? a / b : a * (1.0f / b); }
inline float addcdiv(int v, float s, float a, float b, float value) {
  if (v == 0) return s + value * a / b;
  if (v == 1) return s + value * (a / b);
  return std::fma(value, a / b, s);
}

// Calls f with formulation v (0, 1 or 2) as a compile-time constant, so that the loop f runs inlines the
// formulation's arithmetic without a branch per value.
template <typename F>
void with_formulation(int v, F f) {
  if (v == 0) f(std::integral_constant<int, 0>{});
  else if (v == 1) f(std::integral_constant<int, 1>{});
  else f(std::integral_constant<int, 2>{});
}

bool fusable(const Unit& u, const std::vector<at::Tensor>& tensors) {
  if (!g_fuse || !g_form.activation()) return false;
  for (int64_t c : u.codes)
    if (c != 0 && c != 1 && c != 2 && c != 7) return false;
  for (const auto& t : tensors)
    if (!t.is_contiguous() || t.scalar_type() != at::kFloat) return false;
  return true;
}

// The mixture weights of candidate k for a run of `len` contiguous values: one value (stride 0) for a
// layer gate (a member's whole block) and an input gate (one sample's row), a row of values (stride 1) for a
// neuron gate. Calls f(offset, len, weights, stride) for each run.
template <typename F>
void for_each_run(const at::Tensor& g, int64_t kind, int64_t n, int64_t b, int64_t d, int64_t k, F f) {
  const int64_t c = g.size(-1);
  if (kind == kNeuron) {
    at::Tensor wt = g.select(-1, k).contiguous();  // (n, d)
    const float* w = wt.data_ptr<float>();
    for (int64_t m = 0; m < n; ++m)
      for (int64_t i = 0; i < b; ++i) f((m * b + i) * d, d, w + m * d, int64_t{1});
    return;
  }
  const float* w = g.data_ptr<float>();
  if (kind == kLayer) {
    for (int64_t m = 0; m < n; ++m) f(m * b * d, b * d, w + m * c + k, int64_t{0});
    return;
  }
  for (int64_t m = 0; m < n; ++m)
    for (int64_t i = 0; i < b; ++i) f((m * b + i) * d, d, w + (m * b + i) * c + k, int64_t{0});
}

template <bool First>
inline void mix_run(float* __restrict r, const float* __restrict f, const float* __restrict w, int64_t stride,
                    int64_t len) {
  if (stride == 0) {
    const float wk = *w;
    for (int64_t j = 0; j < len; ++j) r[j] = First ? wk * f[j] : r[j] + wk * f[j];
  } else {
    for (int64_t j = 0; j < len; ++j) r[j] = First ? w[j] * f[j] : r[j] + w[j] * f[j];
  }
}

// mix_candidates: out = w0 f0, then out + w1 f1, ...
at::Tensor fused_mix(const at::Tensor& g, int64_t kind, const std::vector<at::Tensor>& outs, at::Tensor out = {}) {
  const int64_t n = outs[0].size(0), b = outs[0].size(1), d = outs[0].size(2);
  if (!out.defined()) out = at::empty_like(outs[0]);
  float* o = out.data_ptr<float>();
  at::Tensor gc = g.contiguous();
  for (size_t k = 0; k < outs.size(); ++k) {
    const float* f = outs[k].data_ptr<float>();
    for_each_run(gc, kind, n, b, d, static_cast<int64_t>(k), [&](int64_t off, int64_t len, const float* w, int64_t st) {
      if (k == 0) mix_run<true>(o + off, f + off, w, st, len);
      else mix_run<false>(o + off, f + off, w, st, len);
    });
  }
  return out;
}

// acc (=, or += unless First) the derivative of candidate Code of grad * w, given its output y
template <int64_t Code, bool First, int TanhV, int SigmoidV>
inline void grad_run(float* __restrict acc, const float* __restrict gr, const float* __restrict y,
                     const float* __restrict w, int64_t stride, int64_t len) {
  for (int64_t j = 0; j < len; ++j) {
    const float gk = gr[j] * w[stride * j];
    float dk;
    if constexpr (Code == 0) dk = y[j] <= 0.0f ? 0.0f : gk;
    else if constexpr (Code == 1) dk = tanh_bw(TanhV, gk, y[j]);
    else if constexpr (Code == 2) dk = sigmoid_bw(SigmoidV, gk, y[j]);
    else dk = gk;
    if constexpr (First) acc[j] = dk;
    else acc[j] = acc[j] + dk;
  }
}

template <bool First, int TanhV, int SigmoidV>
void grad_run_code(int64_t code, float* acc, const float* gr, const float* y, const float* w, int64_t stride,
                   int64_t len) {
  switch (code) {
    case 0: grad_run<0, First, TanhV, SigmoidV>(acc, gr, y, w, stride, len); break;
    case 1: grad_run<1, First, TanhV, SigmoidV>(acc, gr, y, w, stride, len); break;
    case 2: grad_run<2, First, TanhV, SigmoidV>(acc, gr, y, w, stride, len); break;
    default: grad_run<7, First, TanhV, SigmoidV>(acc, gr, y, w, stride, len); break;
  }
}

template <int TanhV, int SigmoidV>
void fused_gz_impl(float* o, const at::Tensor& grad, const at::Tensor& g, int64_t kind,
                   const std::vector<int64_t>& codes, const std::vector<at::Tensor>& outs) {
  const int64_t n = grad.size(0), b = grad.size(1), d = grad.size(2);
  const float* gr = grad.data_ptr<float>();
  const int64_t c = static_cast<int64_t>(codes.size());
  for (int64_t k = c - 1; k >= 0; --k) {
    const float* y = outs[k].data_ptr<float>();
    for_each_run(g, kind, n, b, d, k, [&](int64_t off, int64_t len, const float* w, int64_t st) {
      if (k == c - 1) grad_run_code<true, TanhV, SigmoidV>(codes[k], o + off, gr + off, y + off, w, st, len);
      else grad_run_code<false, TanhV, SigmoidV>(codes[k], o + off, gr + off, y + off, w, st, len);
    });
  }
}

// gradient of z: the last candidate's derivative of grad * w_k, plus the previous ones', down to the first
at::Tensor fused_gz(const at::Tensor& grad, const at::Tensor& g, int64_t kind, const std::vector<int64_t>& codes,
                    const std::vector<at::Tensor>& outs, at::Tensor out = {}) {
  if (!out.defined()) out = at::empty_like(grad);
  float* o = out.data_ptr<float>();
  at::Tensor gc = g.contiguous();
  const int t = g_form.tanh_bw, s = g_form.sigmoid_bw;
  if (t == 0 && s == 0) fused_gz_impl<0, 0>(o, grad, gc, kind, codes, outs);
  else if (t == 0) fused_gz_impl<0, 1>(o, grad, gc, kind, codes, outs);
  else if (s == 0) fused_gz_impl<1, 0>(o, grad, gc, kind, codes, outs);
  else fused_gz_impl<1, 1>(o, grad, gc, kind, codes, outs);
  return out;
}

// _adam_step_ in two passes over the flat buffers and ATen's square root between them (ATen's sqrt on
// this CPU is not the correctly rounded one: its kernel must compute it)
// (only over `ranges`, (offset, length) pairs, when given: the stack's dummy gate rows, zeros that stay zeros,
// are skipped)
void fused_adam(at::Tensor& p_, at::Tensor& g_, at::Tensor& m_, at::Tensor& v_, at::Tensor& d_, double wd,
                double lerp_w, double beta2, double addcmul_v, double bc2_sqrt, double eps, double neg_step,
                const std::vector<int64_t>& ranges) {
  std::vector<int64_t> spans = ranges;
  if (spans.empty()) spans = {0, p_.numel()};
  float* __restrict p = p_.data_ptr<float>();
  float* __restrict g = g_.data_ptr<float>();
  float* __restrict m = m_.data_ptr<float>();
  float* __restrict v = v_.data_ptr<float>();
  float* __restrict den = d_.data_ptr<float>();
  const float wdf = static_cast<float>(wd), lw = static_cast<float>(lerp_w), b2 = static_cast<float>(beta2);
  const float av = static_cast<float>(addcmul_v), bc = static_cast<float>(bc2_sqrt), ep = static_cast<float>(eps);
  const float ns = static_cast<float>(neg_step);
  const Formulations f = g_form;
  // blocks that stay in L1; within a block, one simple (vectorisable) loop per operation, each with its
  // formulation fixed at compile time (with_formulation)
  constexpr int64_t kBlock = 512;
  for (size_t r = 0; r + 1 < spans.size(); r += 2)
  for (int64_t lo = spans[r], N = spans[r] + spans[r + 1]; lo < N; lo += kBlock) {
    const int64_t hi = std::min(N, lo + kBlock);
    if (wd != 0) with_formulation(f.add_alpha, [&](auto V) {
      for (int64_t x = lo; x < hi; ++x) g[x] = add_alpha(V, g[x], p[x], wdf);
    });
    with_formulation(f.lerp, [&](auto V) { for (int64_t x = lo; x < hi; ++x) m[x] = lerp(V, m[x], g[x], lw); });
    with_formulation(f.addcmul, [&](auto V) {
      for (int64_t x = lo; x < hi; ++x) v[x] = addcmul(V, v[x] * b2, g[x], g[x], av);
    });
  }
  for (size_t r = 0; r + 1 < spans.size(); r += 2) {
    at::Tensor out = d_.narrow(0, spans[r], spans[r + 1]);
    at::sqrt_out(out, v_.narrow(0, spans[r], spans[r + 1]));
  }
  for (size_t r = 0; r + 1 < spans.size(); r += 2)
  for (int64_t lo = spans[r], N = spans[r] + spans[r + 1]; lo < N; lo += kBlock) {
    const int64_t hi = std::min(N, lo + kBlock);
    with_formulation(f.div_scalar, [&](auto V) {
      for (int64_t x = lo; x < hi; ++x) den[x] = div_scalar(V, den[x], bc) + ep;
    });
    with_formulation(f.addcdiv, [&](auto V) {
      for (int64_t x = lo; x < hi; ++x) p[x] = addcdiv(V, p[x], m[x], den[x], ns);
    });
  }
}

void adam_step_(at::Tensor flat, at::Tensor grad, at::Tensor exp_avg, at::Tensor exp_avg_sq, at::Tensor denom,
                int64_t step, double lr, double weight_decay, const std::vector<int64_t>& ranges);


// The gate weights' gradients: per candidate k, grad * f_k summed over the axes its weight was broadcast along
// (ATen: one product and one sum per candidate, then a stack). Here one loop writes all products into a
// (c, n, b, d) buffer and one sum reduces it: each output is still one contiguous (or strided) run reduced by
// ATen's sum, which calibrate() checks gives the same values.
at::Tensor gate_sums(const at::Tensor& grad, const std::vector<at::Tensor>& outs, int64_t kind) {
  const int64_t c = static_cast<int64_t>(outs.size());
  at::Tensor prod = at::empty({c, grad.size(0), grad.size(1), grad.size(2)}, grad.options());
  const int64_t N = grad.numel();
  const float* __restrict gr = grad.data_ptr<float>();
  float* base = prod.data_ptr<float>();
  for (int64_t k = 0; k < c; ++k) {
    const float* __restrict f = outs[k].data_ptr<float>();
    float* __restrict o = base + k * N;
    for (int64_t x = 0; x < N; ++x) o[x] = gr[x] * f[x];
  }
  std::vector<int64_t> dims;
  if (kind == kLayer) dims = {2, 3};
  else dims = {kind == kNeuron ? 2 : 3};
  return at::sum(prod, dims).movedim(0, -1).contiguous();
}

at::Tensor gate_sums_aten(const at::Tensor& grad, const std::vector<at::Tensor>& outs, int64_t kind) {
  std::vector<int64_t> dims;
  if (kind == kLayer) dims = {1, 2};
  else dims = {kind == kNeuron ? 1 : 2};
  std::vector<at::Tensor> parts;
  for (const auto& v : outs) parts.push_back(at::sum(at::mul(grad, v), dims));
  return at::stack(parts, -1);
}

// gg plus the entropy term's gradient (entropy_grad), where the member has one (mode 1: all, 2: where `on`)
at::Tensor entropy_total(const at::Tensor& g, const at::Tensor& lam, const at::Tensor& on, int64_t mode, int64_t kind,
                         const at::Tensor& gg) {
  const int64_t n = g.size(0), per = g.numel() / n;
  at::Tensor out = at::empty_like(gg);
  const float* __restrict pg = g.data_ptr<float>();
  const float* __restrict pgg = gg.data_ptr<float>();
  const float* __restrict pl = lam.data_ptr<float>();
  const bool* __restrict pon = mode == 2 ? on.data_ptr<bool>() : nullptr;
  float* __restrict po = out.data_ptr<float>();
  const float units = static_cast<float>(g.size(1));
  for (int64_t m = 0; m < n; ++m) {
    const float top = kind == kLayer ? -pl[m] : -(pl[m] / units);
    const bool use = pon == nullptr || pon[m];
    for (int64_t x = m * per; x < (m + 1) * per; ++x) {
      const float gx = pg[x];
      const float sel = gx != 0.0f ? 1.0f : 0.0f;  // xlogy(g != 0, g), as ATen's scalar kernel computes it
      const float xl = std::isnan(gx) ? std::numeric_limits<float>::quiet_NaN()
                                      : (sel == 0.0f ? 0.0f : sel * std::log(gx));
      const float total = (top * xl + (top * gx) / gx) + pgg[x];
      po[x] = use ? total : pgg[x];
    }
  }
  return out;
}

at::Tensor entropy_total_aten(const at::Tensor& g, const at::Tensor& lam, const at::Tensor& on, int64_t mode,
                              int64_t kind, const at::Tensor& gg) {
  at::Tensor total = at::add(entropy_grad(g, lam, kind), gg);
  if (mode == 1) return total;
  std::vector<int64_t> shape(g.dim(), 1);
  shape[0] = -1;
  return at::where(on.view(shape), total, gg);
}

bool g_fuse_sums = false, g_fuse_entropy = false;

// the first formulation (0, 1, ...) whose values equal `expected` everywhere, or -1
template <typename F>
int first_match(const at::Tensor& expected, int n_variants, F compute) {
  for (int v = 0; v < n_variants; ++v)
    if (at::equal(compute(v), expected)) return v;
  return -1;
}

template <typename F>
at::Tensor map2(const at::Tensor& a, const at::Tensor& b, F f) {
  at::Tensor out = at::empty_like(a);
  const float *pa = a.data_ptr<float>(), *pb = b.data_ptr<float>();
  float* po = out.data_ptr<float>();
  for (int64_t x = 0; x < a.numel(); ++x) po[x] = f(pa[x], pb[x]);
  return out;
}

// Find ATen's formulation of every fused operation (on random data, sizes a multiple of the kernels' chunk);
// with `enable`, fuse from now on where all were found. Returns the formulations (-1: none matched).
std::vector<int64_t> calibrate(bool enable) {
  at::Generator gen = at::detail::createCPUGenerator(12345);
  const int64_t N = 1 << 13;  // fused multiply-adds change about a third of the results: plenty to tell apart
  at::Tensor g = at::randn({N}, gen);
  at::Tensor a = at::randn({N}, gen);
  at::Tensor y_t = at::tanh(at::randn({N}, gen) * 2);
  at::Tensor y_s = at::sigmoid(at::randn({N}, gen) * 3);
  Formulations f;
  f.tanh_bw = first_match(at::tanh_backward(g, y_t), 2, [&](int v) {
    return map2(g, y_t, [v](float p, float q) { return tanh_bw(v, p, q); });
  });
  f.sigmoid_bw = first_match(at::sigmoid_backward(g, y_s), 2, [&](int v) {
    return map2(g, y_s, [v](float p, float q) { return sigmoid_bw(v, p, q); });
  });
  const double wd = 1e-4;
  f.add_alpha = first_match(at::add(g, a, wd), 2, [&](int v) {
    return map2(g, a, [v, wd](float p, float q) { return add_alpha(v, p, q, static_cast<float>(wd)); });
  });
  bool lerp_ok = true;
  int lerp_v = -1;
  for (double w : {1 - 0.9, 0.75}) {  // both branches
    const int got = first_match(at::lerp(a, g, w), 2, [&](int v) {
      return map2(a, g, [v, w](float p, float q) { return lerp(v, p, q, static_cast<float>(w)); });
    });
    lerp_ok = lerp_ok && got >= 0 && (lerp_v < 0 || got == lerp_v);
    lerp_v = got;
  }
  f.lerp = lerp_ok ? lerp_v : -1;
  at::Tensor s = at::rand({N}, gen) * 1e-3;
  const double cv = 1 - 0.999;
  f.addcmul = first_match(at::addcmul(s, g, g, cv), 3, [&](int v) {
    return map2(s, g, [v, cv](float p, float q) { return addcmul(v, p, q, q, static_cast<float>(cv)); });
  });
  const double bc = std::pow(1 - std::pow(0.999, 7.0), 0.5);
  f.div_scalar = first_match(at::div(s, bc), 2, [&](int v) {
    return map2(s, s, [v, bc](float p, float) { return div_scalar(v, p, static_cast<float>(bc)); });
  });
  at::Tensor den = at::rand({N}, gen) + 1e-3;
  const double step = -1e-3 / (1 - std::pow(0.9, 7.0));
  at::Tensor expected = at::addcdiv(a, g, den, step);
  for (int v = 0; v < 3 && f.addcdiv < 0; ++v) {
    at::Tensor got = at::empty_like(a);
    for (int64_t x = 0; x < N; ++x)
      got.data_ptr<float>()[x] =
          addcdiv(v, a.data_ptr<float>()[x], g.data_ptr<float>()[x], den.data_ptr<float>()[x], static_cast<float>(step));
    if (at::equal(got, expected)) f.addcdiv = v;
  }
  // the mixture: ATen's broadcast products and sums against the fused loop, for each gate kind
  bool mix_ok = true;
  const int64_t n = 3, b = 4, d = 32, c = 3;
  std::vector<at::Tensor> outs{at::relu(at::randn({n, b, d}, gen)), at::tanh(at::randn({n, b, d}, gen)),
                               at::sigmoid(at::randn({n, b, d}, gen))};
  for (int64_t kind : {kLayer, kNeuron, kInput}) {
    std::vector<int64_t> shape = kind == kLayer ? std::vector<int64_t>{n, c}
                                 : kind == kNeuron ? std::vector<int64_t>{n, d, c} : std::vector<int64_t>{n, b, c};
    at::Tensor gw = at::softmax(at::randn(shape, gen), -1);
    mix_ok = mix_ok && at::equal(fused_mix(gw, kind, outs), mix(broadcast_weights(gw, kind), outs));
  }
  f.mix = mix_ok;
  g_form = f;
  g_fuse = false;
  bool whole = f.activation() && f.adam();
  if (whole) {
    // the fused gradient of z and Adam update, whole, against the ATen calls they replace
    at::Tensor grad = at::randn({n, b, d}, gen), z = at::randn({n, b, d}, gen);
    for (const std::vector<int64_t>& codes : {std::vector<int64_t>{0, 1, 2}, std::vector<int64_t>{2, 7, 1, 0}}) {
      std::vector<at::Tensor> ys;
      for (int64_t code : codes) ys.push_back(candidate(code, z));
      for (int64_t kind : {kLayer, kNeuron, kInput}) {
        const int64_t cc = static_cast<int64_t>(codes.size());
        std::vector<int64_t> shape = kind == kLayer ? std::vector<int64_t>{n, cc}
                                     : kind == kNeuron ? std::vector<int64_t>{n, d, cc} : std::vector<int64_t>{n, b, cc};
        at::Tensor gw = at::softmax(at::randn(shape, gen), -1);
        at::Tensor w = broadcast_weights(gw, kind);
        at::Tensor expected = candidate_backward(codes[cc - 1], at::mul(grad, w.select(-1, cc - 1)), z, ys[cc - 1]);
        for (int64_t k = cc - 2; k >= 0; --k) expected.add_(candidate_backward(codes[k], at::mul(grad, w.select(-1, k)), z, ys[k]));
        whole = whole && at::equal(fused_gz(grad, gw, kind, codes, ys), expected);
      }
    }
    std::vector<at::Tensor> ref{at::randn({N}, gen), at::randn({N}, gen) * 1e-2, at::randn({N}, gen) * 1e-3,
                                at::rand({N}, gen) * 1e-5, at::empty({N})};
    std::vector<at::Tensor> got;
    for (const auto& t : ref) got.push_back(t.clone());
    adam_step_(ref[0], ref[1], ref[2], ref[3], ref[4], 7, 1e-3, 1e-4, {});
    g_fuse = true;
    adam_step_(got[0], got[1], got[2], got[3], got[4], 7, 1e-3, 1e-4, {});
    g_fuse = false;
    for (size_t i = 0; i < ref.size(); ++i) whole = whole && at::equal(ref[i], got[i]);
  }
  g_fuse = enable && whole;
  // one sum over the stacked products, and the entropy loop, against ATen on the shapes of small and large stacks
  bool sums = true, entropy = true;
  for (const auto& shp : {std::vector<int64_t>{3, 4, 32}, std::vector<int64_t>{7, 64, 64},
                          std::vector<int64_t>{2, 20, 32}, std::vector<int64_t>{5, 86, 64}, std::vector<int64_t>{1, 9, 50}}) {
    at::Tensor grad = at::randn(shp, gen);
    std::vector<at::Tensor> ys{at::relu(at::randn(shp, gen)), at::tanh(at::randn(shp, gen)),
                               at::sigmoid(at::randn(shp, gen))};
    for (int64_t kind : {kLayer, kNeuron, kInput}) {
      sums = sums && at::equal(gate_sums(grad, ys, kind), gate_sums_aten(grad, ys, kind));
      std::vector<int64_t> gshape = kind == kLayer ? std::vector<int64_t>{shp[0], 3}
                                    : kind == kNeuron ? std::vector<int64_t>{shp[0], shp[2], 3}
                                                      : std::vector<int64_t>{shp[0], shp[1], 3};
      at::Tensor gw = at::softmax(at::randn(gshape, gen) * 4, -1);
      at::Tensor gg = at::randn(gshape, gen);
      at::Tensor lam = at::rand({shp[0]}, gen) * 0.05;
      at::Tensor on = at::rand({shp[0]}, gen) > 0.5;
      for (int64_t mode : {1, 2}) {
        at::Tensor a = entropy_total(gw, lam, on, mode, kind, gg), e = entropy_total_aten(gw, lam, on, mode, kind, gg);
        entropy = entropy && at::equal(a, e);
      }
    }
  }
  g_fuse_sums = enable && sums;
  g_fuse_entropy = enable && entropy;
  return {f.tanh_bw, f.sigmoid_bw, f.add_alpha, f.lerp, f.addcmul, f.div_scalar, f.addcdiv, f.mix ? 1 : 0,
          g_fuse ? 1 : 0, sums ? 1 : 0, entropy ? 1 : 0};
}

// The families' passes (defined below, with the ops the Python step calls).
std::vector<at::Tensor> kernel_forward(const at::Tensor& z_in, const at::Tensor& dictionary, double neg_gamma,
                                       double floor, const at::Tensor& alpha, const at::Tensor& tails);
std::vector<at::Tensor> kernel_backward(const at::Tensor& grad_in, const std::vector<at::Tensor>& sv,
                                        const at::Tensor& dictionary, double neg_gamma, const at::Tensor& alpha,
                                        at::IntArrayRef tails_shape);
std::vector<at::Tensor> rational_forward(const at::Tensor& z_in, const at::Tensor& num_in, const at::Tensor& den_in);
std::vector<at::Tensor> rational_backward(const at::Tensor& grad_in, const at::Tensor& z, const at::Tensor& top,
                                          const at::Tensor& q, const at::Tensor& w, const at::Tensor& num_in,
                                          const at::Tensor& den_in, at::TensorList highs);
std::vector<at::Tensor> pwl_forward(const at::Tensor& z_in, const at::Tensor& values_in, double lo, double step);
std::vector<at::Tensor> pwl_backward(const at::Tensor& grad_in, const at::Tensor& at_, const at::Tensor& t,
                                     const at::Tensor& r, double step, int64_t numel);
std::vector<at::Tensor> spline3_forward(const at::Tensor& z_in, const at::Tensor& knots,
                                        const at::Tensor& coefficients, const at::Tensor& base_weight,
                                        const at::Tensor& spline_weight, int64_t base_code);
std::vector<at::Tensor> maxout_backward(const at::Tensor& grad_in, const at::Tensor& xu_in, const at::Tensor& q_in,
                                        const at::Tensor& out_in, const at::Tensor& slopes_in,
                                        const at::Tensor& offsets);
std::vector<at::Tensor> spline3_backward(const at::Tensor& grad, const at::Tensor& z_in,
                                         const std::vector<at::Tensor>& sv, const at::Tensor& base_weight,
                                         const at::Tensor& spline_weight, int64_t base_code,
                                         at::IntArrayRef coefficients_shape, at::IntArrayRef padded_shape);

// A learnable family's forward: FamilyOps.forward with the pass the Python step chose for the layer
// (family_segments.py: _kernel_native_forward, _spline_native_forward, _rational_native_forward,
// _pwl_native_forward, _prelu_forward, _swish_forward, _maxout_forward, _neural_forward), the same calls with the
// same arguments. What family_backward reads goes into `saved` when given.
at::Tensor family_forward(const Choices& ch, const Unit& u, const at::Tensor& z, std::vector<at::Tensor>* saved) {
  const std::vector<at::Tensor>& p = u.params;
  std::vector<at::Tensor> r;
  switch (u.family) {
    case kKernelFamily:
      r = kernel_forward(z, u.extra[0], u.hp[0], u.hp[1], p[0].reshape({z.size(0), -1, p[0].size(-1)}), p[1]);
      break;
    case kSplineFamily:
      r = spline3_forward(z, u.extra[0], p[0], p[1], p[2], u.ints[0]);
      break;
    case kRationalFamily:
      r = rational_forward(z, p[0], p[1]);
      break;
    case kPwlFamily:
      r = pwl_forward(z, p[0].reshape({z.size(0), -1}), u.hp[0], u.hp[1]);
      break;
    case kPreluFamily: {  // relu(x) - slope * relu(-x)
      at::Tensor a = at::relu(z), c = at::relu(at::neg(z));
      r = {at::sub(a, at::mul(p[0], c)), a, c};
      break;
    }
    case kSwishFamily: {  // x * sigmoid(beta * x)
      at::Tensor s = at::sigmoid(member_rows(at::mul(p[0], z)));  // (member_rows: as _swish_forward)
      r = {at::mul(z, s), z, s};
      break;
    }
    case kMaxoutFamily: {  // (x.unsqueeze(-1) * slopes + offsets).amax(-1)
      at::Tensor xu = z.unsqueeze(-1);
      at::Tensor q = at::add(at::mul(xu, p[0]), p[1]);
      at::Tensor out = at::amax(q, {-1});
      r = {out, xu, q, out};
      break;
    }
    default: {  // kNeuralFamily: x + outer(tanh(inner(x.unsqueeze(-1)))).squeeze(-1)
      const int64_t n = z.size(0);
      at::Tensor w1 = p[0].reshape({n, -1, 1}), b1 = p[1].reshape({n, -1});
      at::Tensor w2 = p[2].reshape({n, 1, -1}), b2 = p[3].reshape({n, 1});
      at::Tensor xu = z.reshape({n, -1, 1});
      at::Tensor t = at::tanh(linear(ch, xu, w1, b1));
      r = {at::add(z, linear(ch, t, w2, b2).view(z.sizes())), xu, t};
    }
  }
  if (saved != nullptr) saved->assign(r.begin() + 1, r.end());
  return r[0];
}

// A learnable family's backward (FamilyOps.backward, the passes named above): the gradient of z; each
// parameter's gradient into its gradient view.
at::Tensor family_backward(const Choices& ch, const Unit& u, const at::Tensor& z, const std::vector<at::Tensor>& sv,
                           const at::Tensor& grad) {
  const std::vector<at::Tensor>& p = u.params;
  auto put = [&u](size_t k, const at::Tensor& g) { u.grads[k].copy_(g.view(u.grads[k].sizes())); };
  switch (u.family) {
    case kKernelFamily: {
      const at::Tensor members = p[0].reshape({grad.size(0), -1, p[0].size(-1)});
      std::vector<at::Tensor> r = kernel_backward(grad, sv, u.extra[0], u.hp[0], members, p[1].sizes());
      put(0, r[1].sum_to_size(p[0].sizes()));  // grad * e_i, summed as autograd sums
      put(1, r[2]);
      return r[0];
    }
    case kSplineFamily: {
      std::vector<int64_t> shape(p[0].sizes().begin(), p[0].sizes().end()), padded(shape);
      padded.back() += 8;
      std::vector<at::Tensor> r = spline3_backward(grad, z, sv, p[1], p[2], u.ints[0], shape, padded);
      put(0, r[1]);
      put(1, r[2]);
      put(2, r[3]);
      return r[0];
    }
    case kRationalFamily: {
      const std::vector<at::Tensor> powers(sv.begin() + 4, sv.end());
      std::vector<at::Tensor> r = rational_backward(grad, sv[0], sv[1], sv[2], sv[3], p[0], p[1], powers);
      put(0, r[1]);
      put(1, r[2]);
      return r[0];
    }
    case kPwlFamily: {
      std::vector<at::Tensor> r = pwl_backward(grad, sv[0], sv[1], sv[2], u.hp[1], p[0].numel());
      put(0, r[1]);
      return r[0];
    }
    case kPreluFamily: {
      const at::Tensor &a = sv[0], &c = sv[1];
      const at::Tensor gm = at::neg(grad);  // SubBackward: the subtrahend's gradient
      put(0, at::mul(gm, c).sum_to_size(p[0].sizes()));
      const at::Tensor gc = at::mul(gm, p[0]);
      return at::add(at::threshold_backward(grad, a, 0), at::neg(at::threshold_backward(gc, c, 0)));
    }
    case kSwishFamily: {
      const at::Tensor &x = sv[0], &s = sv[1];
      const at::Tensor gz = at::mul(grad, s);
      const at::Tensor gu = at::sigmoid_backward(at::mul(grad, x), s);
      put(0, at::mul(gu, x).sum_to_size(p[0].sizes()));
      return at::add(gz, at::mul(gu, p[0]));
    }
    case kMaxoutFamily: {  // _maxout_native_backward
      std::vector<at::Tensor> r = maxout_backward(grad, sv[0], sv[1], sv[2], p[0], p[1]);
      put(0, r[1]);
      put(1, r[2]);
      return r[0];
    }
    default: {  // kNeuralFamily (_neural_backward: the Linears' backward, as backward_ derives the backbone's)
      const at::Tensor &xu = sv[0], &t = sv[1];
      const int64_t n = grad.size(0);
      const at::Tensor w1 = p[0].reshape({n, -1, 1}), w2 = p[2].reshape({n, 1, -1});
      const at::Tensor g = grad.reshape({n, -1, 1});
      at::Tensor g_w2 = at::empty_like(w2), g_w1 = at::empty_like(w1);
      weight_grad_(ch, g, t, g_w2);
      const at::Tensor g_b2 = at::sum(g, {1});
      const at::Tensor ga = at::tanh_backward(input_grad(ch, g, w2), t);
      weight_grad_(ch, ga, xu, g_w1);
      const at::Tensor g_b1 = at::sum(ga, {1});
      const at::Tensor gz = at::add(grad, input_grad(ch, ga, w1).view(z.sizes()));
      put(0, g_w1);
      put(1, g_b1);
      put(2, g_w2);
      put(3, g_b2);
      return gz;
    }
  }
}

// StackedMLP._activate; returns (output, gate weights or undefined)
// (into `out`, a contiguous slice of the layer's output, when given)
std::pair<at::Tensor, at::Tensor> activate(const Stack& st, const Unit& u, at::Tensor z, const at::Tensor& x,
                                           const at::Tensor& h, std::vector<Record>* records, at::Tensor out = {}) {
  z = member_rows(z);
  if (u.kind == kFamily) {
    Record rec;
    at::Tensor y = family_forward(st.choices, u, z, records != nullptr ? &rec.saved : nullptr);
    if (out.defined()) {
      out.copy_(y);  // the segment's rows of the layer's output (torch.cat in Python)
    } else {
      out = y;
    }
    if (records != nullptr) {
      rec.z = z;
      records->push_back(std::move(rec));
    }
    return {out, at::Tensor()};
  }
  if (u.kind == kFixed) {
    const at::Tensor zin = candidate_input(u, 0, z);
    if (!out.defined()) {
      out = candidate(u.codes[0], zin);
    } else if (u.codes[0] == 0) {
      at::clamp_min_out(out, zin, 0);  // at::relu is clamp_min(z, 0)
    } else if (u.codes[0] == 1) {
      at::tanh_out(out, zin);
    } else if (u.codes[0] == 2) {
      at::sigmoid_out(out, zin);
    } else {
      out.copy_(candidate(u.codes[0], zin));
    }
    if (records != nullptr) records->push_back({z, {out}, {}, {}, {}, {}});
    return {out, at::Tensor()};
  }
  Record rec;
  at::Tensor g = gate_weights(st, u, u.source == 0 ? x : h, records != nullptr ? &rec : nullptr);
  at::Tensor w = broadcast_weights(g, u.kind);
  std::vector<at::Tensor> outs;
  for (size_t k = 0; k < u.codes.size(); ++k) outs.push_back(candidate(u.codes[k], candidate_input(u, k, z)));
  if (fusable(u, outs)) {
    out = fused_mix(g, u.kind, outs, out);
  } else if (out.defined()) {
    out.copy_(mix(w, outs));
  } else {
    out = mix(w, outs);
  }
  if (records != nullptr) {
    rec.z = z;
    rec.outs = std::move(outs);
    rec.w = w;
    rec.g = g;
    records->push_back(std::move(rec));
  }
  return {out, g};
}

// StackedMLP.forward; the gate weights of the gated layers (segment by segment) are appended to `gates`
at::Tensor forward(const Stack& st, const at::Tensor& x, Tape* tape, std::vector<at::Tensor>& gates) {
  const size_t n_seg = st.segments.size();
  const bool single = n_seg == 1;
  std::vector<std::vector<at::Tensor>> seg_gates(n_seg);
  std::vector<at::Tensor> xs;
  if (single) {
    xs.push_back(x);
  } else if (st.network_context) {
    xs = x.split_with_sizes(st.sizes);
  } else {
    xs.assign(n_seg, at::Tensor());
  }
  at::Tensor h = x;
  const size_t n_hidden = st.linears.size() - 1;
  for (size_t layer = 0; layer < n_hidden; ++layer) {
    const Linear& lin = st.linears[layer];
    at::Tensor z = linear(st.choices, h, lin.w, lin.b);
    std::vector<Record>* records = nullptr;
    if (tape != nullptr) {
      tape->inputs.push_back(h);
      tape->records.emplace_back();
      records = &tape->records.back();
    }
    if (single) {
      auto [out, g] = activate(st, st.segments[0].units[layer], z, x, h, records);
      seg_gates[0].push_back(g);
      h = out;
      continue;
    }
    std::vector<at::Tensor> hs = st.layer_context[layer] ? h.split_with_sizes(st.sizes)
                                                         : std::vector<at::Tensor>(n_seg);
    std::vector<at::Tensor> zs = z.split_with_sizes(st.sizes);
    // each segment writes its rows of the layer's output (torch.cat of the segments' outputs in Python)
    at::Tensor next = at::empty(z.sizes(), z.options());
    std::vector<at::Tensor> rows = next.split_with_sizes(st.sizes);
    for (size_t i = 0; i < n_seg; ++i) {
      auto [out, g] = activate(st, st.segments[i].units[layer], zs[i], xs[i], hs[i], records, rows[i]);
      seg_gates[i].push_back(g);
    }
    h = next;
  }
  if (tape != nullptr) tape->inputs.push_back(h);
  const Linear& head = st.linears.back();
  for (auto& per_seg : seg_gates)
    for (auto& g : per_seg)
      if (g.defined()) gates.push_back(g);
  return linear(st.choices, h, head.w, head.b);
}

// stacked_loss._binary_probabilities and member_task_loss: each member's loss; its probabilities and the
// mask of members with a non-finite logit (undefined if none) into `prob` and `bad`
at::Tensor task_loss(const at::Tensor& logits, const at::Tensor& target, at::Tensor& prob, at::Tensor& bad) {
  prob = at::sigmoid(member_rows(logits));
  bool finite = true;
  {
    at::Tensor l = logits.contiguous();
    const float* p = l.data_ptr<float>();
    for (int64_t x = 0; x < l.numel() && finite; ++x) finite = std::isfinite(p[x]);
  }
  if (!finite) {
    bad = at::isfinite(logits).all(2).all(1).logical_not();
    prob = at::where(bad.view({-1, 1, 1}), at::Scalar(0.5), prob);
  }
  at::Tensor task = at::binary_cross_entropy(prob, target, {}, at::Reduction::None).mean({1, 2});
  if (bad.defined()) task = task.masked_fill(bad, std::numeric_limits<double>::quiet_NaN());
  return task;
}

// stacked_loss.task_and_gradient (binary)
std::pair<at::Tensor, at::Tensor> task_and_gradient(const at::Tensor& logits, const at::Tensor& target) {
  at::Tensor prob, bad;
  at::Tensor task = task_loss(logits, target, prob, bad);
  // stacked_loss.loss_gradient
  at::Tensor ones = at::ones({}, prob.options()).expand(prob.sizes());
  at::Tensor g = at::binary_cross_entropy_backward(ones, prob, target, {}, at::Reduction::None);
  g.div_(prob.size(1) * prob.size(2));
  at::Tensor grad = at::sigmoid_backward(g, prob);
  if (bad.defined()) grad = grad.masked_fill(bad.view({-1, 1, 1}), std::numeric_limits<double>::quiet_NaN());
  return {task, grad};
}

// stacked_backward._linear_backward_
void linear_backward_(const Choices& ch, const at::Tensor& grad, const at::Tensor& x, at::Tensor gw, at::Tensor gb) {
  weight_grad_(ch, grad, x, gw);
  at::sum_out(gb, grad, {1});
}

// stacked_backward._gated_backward: (gradient of z, gradient of the layer input or undefined)
// (the gradient of z into `gz`, a contiguous slice of the layer's, when given)
std::pair<at::Tensor, at::Tensor> gated_backward(const Stack& st, const Unit& u, const Segment& seg, const Record& r,
                                                 const at::Tensor& grad, at::Tensor gz = {}) {
  const int64_t n = static_cast<int64_t>(r.outs.size());
  std::vector<at::Tensor> operands(r.outs);
  operands.push_back(grad);
  const bool fused = fusable(u, operands);
  if (fused) {
    gz = fused_gz(grad, r.g, u.kind, u.codes, r.outs, gz);
  } else {
    at::Tensor target = gz;
    int64_t k = n - 1;
    gz = candidate_backward(u.codes[k], at::mul(grad, r.w.select(-1, k)), candidate_input(u, k, r.z), r.outs[k]);
    for (k = n - 2; k >= 0; --k) {
      gz.add_(candidate_backward(u.codes[k], at::mul(grad, r.w.select(-1, k)), candidate_input(u, k, r.z),
                                 r.outs[k]));
    }
    if (target.defined()) {
      target.copy_(gz);
      gz = target;
    }
  }
  at::Tensor gg = fused && g_fuse_sums ? gate_sums(grad, r.outs, u.kind) : gate_sums_aten(grad, r.outs, u.kind);
  if (seg.lam_mode != 0) {
    gg = g_fuse_entropy && r.g.is_contiguous() && gg.is_contiguous()
             ? entropy_total(r.g, seg.lam.contiguous(), seg.on, seg.lam_mode, u.kind, gg)
             : entropy_total_aten(r.g, seg.lam, seg.on, seg.lam_mode, u.kind, gg);
  }
  at::Tensor gs = at::_softmax_backward_data(gg, r.g, -1, r.g.scalar_type());
  if (u.kind != kInput) {
    at::Tensor out = u.grads[0];
    at::div_out(out, gs, u.temperature);
    return {gz, at::Tensor()};
  }
  at::Tensor gl = at::div(gs, u.temperature);
  linear_backward_(st.choices, gl, r.head_hidden, u.grads[2], u.grads[3]);
  at::Tensor gh = at::threshold_backward(input_grad(st.choices, gl, u.params[2]), r.head_hidden, 0);
  linear_backward_(st.choices, gh, r.context, u.grads[0], u.grads[1]);
  return {gz, u.source == 1 ? input_grad(st.choices, gh, u.params[0]) : at::Tensor()};
}

// stacked_backward.backward_
void backward_(const Stack& st, const Tape& tape, const at::Tensor& grad_logits) {
  const Linear& head = st.linears.back();
  linear_backward_(st.choices, grad_logits, tape.inputs.back(), head.gw, head.gb);
  at::Tensor grad = input_grad(st.choices, grad_logits, head.w);
  const bool single = st.segments.size() == 1;
  for (int64_t layer = static_cast<int64_t>(st.linears.size()) - 2; layer >= 0; --layer) {
    std::vector<at::Tensor> parts = single ? std::vector<at::Tensor>{grad} : grad.split_with_sizes(st.sizes);
    std::vector<at::Tensor> context_grads;
    // each segment writes its rows of the layer's gradient (torch.cat of the segments' in Python)
    at::Tensor gz = single ? at::Tensor() : at::empty(grad.sizes(), grad.options());
    std::vector<at::Tensor> rows = single ? std::vector<at::Tensor>(1) : gz.split_with_sizes(st.sizes);
    for (size_t i = 0; i < st.segments.size(); ++i) {
      const Segment& seg = st.segments[i];
      const Unit& u = seg.units[layer];
      const Record& r = tape.records[layer][i];
      at::Tensor part;
      if (u.kind == kFixed) {
        const int64_t code = u.codes[0];
        if (!rows[i].defined() || code > 2) {
          part = candidate_backward(code, parts[i], candidate_input(u, 0, r.z), r.outs[0]);
          if (rows[i].defined()) rows[i].copy_(part);
        } else if (code == 0) {
          at::threshold_backward_out(rows[i], parts[i], r.outs[0], 0);
        } else if (code == 1) {
          at::tanh_backward_out(rows[i], parts[i], r.outs[0]);
        } else {
          at::sigmoid_backward_out(rows[i], parts[i], r.outs[0]);
        }
        context_grads.emplace_back();
      } else if (u.kind == kFamily) {
        part = family_backward(st.choices, u, r.z, r.saved, parts[i]);
        if (rows[i].defined()) rows[i].copy_(part);
        context_grads.emplace_back();
      } else {
        auto [g, gc] = gated_backward(st, u, seg, r, parts[i], rows[i]);
        part = g;
        context_grads.push_back(gc);
      }
      if (single) gz = part;
    }
    const Linear& lin = st.linears[layer];
    linear_backward_(st.choices, gz, tape.inputs[layer], lin.gw, lin.gb);
    if (layer == 0) break;
    grad = input_grad(st.choices, gz, lin.w);
    if (st.layer_context[layer]) {
      std::vector<at::Tensor> split = grad.split_with_sizes(st.sizes);
      std::vector<at::Tensor> adds;
      for (size_t i = 0; i < split.size(); ++i) {
        adds.push_back(context_grads[i].defined() ? context_grads[i] : at::zeros_like(split[i]));
      }
      grad = at::add(grad, at::cat(adds));
    }
  }
}

// vectorized._adam_step_
void adam_step_(at::Tensor flat, at::Tensor grad, at::Tensor exp_avg, at::Tensor exp_avg_sq, at::Tensor denom,
                int64_t step, double lr, double weight_decay, const std::vector<int64_t>& ranges) {
  constexpr double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  const double bias_correction1 = 1 - std::pow(beta1, static_cast<double>(step));
  const double bias_correction2 = 1 - std::pow(beta2, static_cast<double>(step));
  const double step_size = lr / bias_correction1;
  if (g_fuse) {
    fused_adam(flat, grad, exp_avg, exp_avg_sq, denom, weight_decay, 1 - beta1, beta2, 1 - beta2,
               std::pow(bias_correction2, 0.5), eps, -step_size, ranges);
    return;
  }
  if (weight_decay != 0) grad.add_(flat, weight_decay);
  exp_avg.lerp_(grad, 1 - beta1);
  exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1 - beta2);
  at::sqrt_out(denom, exp_avg_sq).div_(std::pow(bias_correction2, 0.5)).add_(eps);
  flat.addcdiv_(exp_avg, denom, -step_size);
}

// gate_entropy: -sum_k g_k log g_k over the last axis
at::Tensor gate_entropy(const at::Tensor& w) { return at::neg(at::special_xlogy(w, w).sum(-1)); }

// stacked_records.step_entropies for one step: per member, the summed layer entropies (mean over units or
// samples); zero for members without gates
at::Tensor step_entropy(const Stack& st, const std::vector<at::Tensor>& gates, int64_t members) {
  at::Tensor ent = at::zeros({members}, at::kFloat);
  size_t next = 0;
  int64_t start = 0;
  for (const Segment& seg : st.segments) {
    at::Tensor total;
    for (const Unit& u : seg.units) {
      if (u.kind == kFixed || u.kind == kFamily) continue;
      at::Tensor h = gate_entropy(gates[next++]);
      if (h.dim() == 2) h = h.mean(1);
      total = total.defined() ? at::add(total, h) : h;
    }
    if (total.defined()) ent.narrow(0, start, seg.size).copy_(total);
    start += seg.size;
  }
  return ent;
}

// One mini-batch step of every member: forward with a tape, loss, backward, Adam. The batch is columns
// [lo, lo + nb) of `index` (rows of x_rows / y_rows, one row of indices per member).
// Returns [task loss (K,), the summed layer gate entropies (K,)].
std::vector<at::Tensor> train_step(const std::vector<at::Tensor>& tensors, const std::vector<int64_t>& spec,
                                   const std::vector<int64_t>& choices, const std::vector<int64_t>& ranges,
                                   const std::vector<double>& scalars, const at::Tensor& x_rows,
                                   const at::Tensor& y_rows, const at::Tensor& index, int64_t lo, int64_t nb,
                                   int64_t step) {
  // nothing here requires gradients: dispatch straight to the CPU kernels, past autograd's bookkeeping
  at::AutoDispatchBelowADInplaceOrView guard;
  Stack st(tensors, spec, choices);
  const int64_t members = st.linears[0].w.size(0);
  at::Tensor batch = index.narrow(1, lo, nb).reshape({-1});
  at::Tensor x = x_rows.index_select(0, batch).view({members, nb, -1});
  std::vector<int64_t> y_shape{members, nb};
  for (int64_t d = 1; d < y_rows.dim(); ++d) y_shape.push_back(y_rows.size(d));
  at::Tensor y = y_rows.index_select(0, batch).view(y_shape);
  Tape tape;
  std::vector<at::Tensor> gates;
  at::Tensor logits = forward(st, x, &tape, gates);
  auto [task, grad_logits] = task_and_gradient(logits, y);
  backward_(st, tape, grad_logits);
  adam_step_(st.flat, st.grad, st.exp_avg, st.exp_avg_sq, st.denom, step, scalars[0], scalars[1], ranges);
  return {task, step_entropy(st, gates, members)};
}

// The validation pass: [each member's task loss (K,), then per gated layer (segment by segment) the mean
// gate weights (n, c) and mean gate entropy (n,): stacked_records.gate_summary].
std::vector<at::Tensor> evaluate(const std::vector<at::Tensor>& tensors, const std::vector<int64_t>& spec,
                                 const std::vector<int64_t>& choices, const at::Tensor& x, const at::Tensor& y) {
  at::AutoDispatchBelowADInplaceOrView guard;
  Stack st(tensors, spec, choices);
  std::vector<at::Tensor> gates;
  at::Tensor logits = forward(st, x, nullptr, gates);
  at::Tensor prob, bad;
  std::vector<at::Tensor> out{task_loss(logits, y, prob, bad)};
  for (const at::Tensor& g : gates) {
    at::Tensor flat = g.reshape({g.size(0), -1, g.size(-1)});
    out.push_back(flat.mean(1));
    out.push_back(gate_entropy(flat).mean(1));
  }
  return out;
}

at::Tensor candidate_op(int64_t code, const at::Tensor& z) { return candidate(code, z); }

at::Tensor candidate_backward_op(int64_t code, const at::Tensor& g, const at::Tensor& z, const at::Tensor& y) {
  return candidate_backward(code, g, z, y);
}


// ---- The kernel family's dictionary terms, fused (family_segments.py: _kernel_forward / _kernel_backward) ----
// The kernel activation's cost is its (n, b, d, D) temporaries: the derived Python pass makes about nine passes
// over them (differences, squares, scaling, the floor mask, exp, products with the coefficients, the sum over the
// dictionary). Here the element-wise ones are one loop before ATen's exp (the same kernel on the same contiguous
// buffer, so the same values) and one after it, and the sum over the last axis adds in the order ATen's
// vectorised inner sum adds (inner_sum below, its vector width found by calibrate_kernel_sum()). Terms whose
// exponent is below `floor` are 0, as in the Python pass (which multiplies by a 0/1 mask): here the exponent is
// clamped to kTermMark first (so exp stays off the slow subnormal path, exp(-80) = 1.8e-35 is a normal number)
// and the term is zeroed after exp, where it is below kTermCut; NaN stays NaN.

constexpr float kTermMark = -80.0f;
constexpr float kTermCut = 1e-32f;  // between exp(kTermMark) and exp(floor) for any floor above -73

// ATen's multi_row_sum (SumKernel.cpp): `size` rows of `nrows` lanes, accumulated in a four-level cascade of
// 16-row steps; lane k of row r is x[r * row_stride + k * col_stride].
template <int64_t nrows>
void multi_row_sum(const float* x, int64_t row_stride, int64_t col_stride, int64_t size, float* out) {
  constexpr int levels = 4;
  int64_t ceil_log2 = 1;
  if (size > 2) {
    ceil_log2 = 64 - __builtin_clzll(static_cast<unsigned long long>(size - 1));
  }
  const int64_t power = std::max<int64_t>(4, ceil_log2 / levels);
  const int64_t step = int64_t{1} << power;
  const int64_t mask = step - 1;
  float acc[levels][nrows];
  for (auto& level : acc)
    for (float& v : level) v = 0.0f;
  int64_t i = 0;
  for (; i + step <= size;) {
    for (int64_t j = 0; j < step; ++j, ++i)
      for (int64_t k = 0; k < nrows; ++k) acc[0][k] += x[i * row_stride + k * col_stride];
    for (int j = 1; j < levels; ++j) {
      for (int64_t k = 0; k < nrows; ++k) {
        acc[j][k] += acc[j - 1][k];
        acc[j - 1][k] = 0.0f;
      }
      if ((i & (mask << (j * power))) != 0) break;
    }
  }
  for (; i < size; ++i)
    for (int64_t k = 0; k < nrows; ++k) acc[0][k] += x[i * row_stride + k * col_stride];
  for (int j = 1; j < levels; ++j)
    for (int64_t k = 0; k < nrows; ++k) acc[0][k] += acc[j][k];
  for (int64_t k = 0; k < nrows; ++k) out[k] = acc[0][k];
}

// ATen's row_sum over `size` items of `lanes` floats each (lanes 1: scalars): an ILP of 4, the rest into the first
constexpr int64_t kMaxLanes = 16;
void row_sum(const float* x, int64_t size, int64_t lanes, float* out) {
  constexpr int64_t ilp = 4;
  const int64_t size_ilp = size / ilp;
  float partial[ilp][kMaxLanes];
  for (int64_t l = 0; l < lanes; ++l) {
    float got[ilp];
    multi_row_sum<ilp>(x + l, lanes * ilp, lanes, size_ilp, got);
    for (int64_t k = 0; k < ilp; ++k) partial[k][l] = got[k];
  }
  for (int64_t i = size_ilp * ilp; i < size; ++i)
    for (int64_t l = 0; l < lanes; ++l) partial[0][l] += x[i * lanes + l];
  for (int64_t k = 1; k < ilp; ++k)
    for (int64_t l = 0; l < lanes; ++l) partial[0][l] += partial[k][l];
  for (int64_t l = 0; l < lanes; ++l) out[l] = partial[0][l];
}

// row_sum(x, n, 1) for n < 64, written out: multi_row_sum's cascade never completes a step of 16 rows there, so
// lane k is the plain sum of x[k], x[4 + k], ... from +0 (its further additions of zero partial sums change
// nothing: a sum started at +0 is never -0), the tail goes into lane 0, then the lanes add in order.
// Not vectorised: its callers store x element by element just before, and a vector load of those stores stalls
// (store forwarding fails), which cost the rational pass a third of its time.
__attribute__((noinline, optimize("no-tree-vectorize", "no-tree-slp-vectorize")))
float small_row_sum(const float* x, int64_t n) {
  float p0 = 0.0f, p1 = 0.0f, p2 = 0.0f, p3 = 0.0f;
  const int64_t whole = n / 4 * 4;
  for (int64_t i = 0; i < whole; i += 4) {
    p0 += x[i];
    p1 += x[i + 1];
    p2 += x[i + 2];
    p3 += x[i + 3];
  }
  for (int64_t i = whole; i < n; ++i) p0 += x[i];
  return ((p0 + p1) + p2) + p3;
}

// The sum of x[0 .. n) as ATen's sum over a contiguous last axis adds it, with vectors of `width` floats: a
// vectorised inner sum (whole vectors lane-wise, the tail in order, then the lanes in order) where n >= width,
// else a scalar one; stored by adding to a zero.
inline float inner_sum(const float* x, int64_t n, int64_t width) {
  if (n < width && n < 64) return 0.0f + small_row_sum(x, n);
  float total = 0.0f;
  if (n >= width) {
    float lanes[kMaxLanes];
    row_sum(x, n / width, width, lanes);
    for (int64_t k = (n / width) * width; k < n; ++k) total += x[k];
    for (int64_t l = 0; l < width; ++l) total += lanes[l];
  } else {
    row_sum(x, n, 1, &total);
  }
  return 0.0f + total;
}

int64_t g_sum_width = -1;  // calibrate_kernel_sum(): ATen's vector width in floats, -1 where none matched

// For the ops whose sums follow that calibration: refuses to run without one.
void check_sum_width(const char* op) {
  TORCH_CHECK(g_sum_width == 16 || g_sum_width == 8 || g_sum_width == 4, op,
              ": calibrate_kernel_sum() found no formulation of ATen's sum");
}

// Most terms an element's loop holds on the stack: a rational's coefficients (degree 63), maxout's pieces.
constexpr int64_t kMaxTerms = 64;

// inner_sum of kBlock rows of `n` floats held transposed (term k of row r at xt[k * kBlock + r]) into
// out[0 .. rows): where n has one to three whole vectors of W floats (fewer than row_sum's ILP) the rows are
// summed side by side, each lane the plain sum of its vectors (row_sum's further additions of zero partial sums
// change nothing: a sum started at +0 is never -0), then the tail, then the lanes in order; else row by row.
constexpr int64_t kBlock = 16;
template <int64_t W>
void block_sums_w(const float* xt, int64_t rows, int64_t n, float* out) {
  if (n < W || n >= 4 * W) {
    float row[4 * kMaxLanes];
    std::vector<float> wide(n > 4 * kMaxLanes ? n : 0);
    float* x = n > 4 * kMaxLanes ? wide.data() : row;
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t k = 0; k < n; ++k) x[k] = xt[k * kBlock + r];
      out[r] = inner_sum(x, n, W);
    }
    return;
  }
  const int64_t vecs = n / W;
  float total[kBlock], lane[kBlock];
  for (int64_t r = 0; r < kBlock; ++r) total[r] = 0.0f;
  for (int64_t k = vecs * W; k < n; ++k)
    for (int64_t r = 0; r < kBlock; ++r) total[r] += xt[k * kBlock + r];
  for (int64_t l = 0; l < W; ++l) {
    for (int64_t r = 0; r < kBlock; ++r) lane[r] = 0.0f;
    for (int64_t v = 0; v < vecs; ++v)
      for (int64_t r = 0; r < kBlock; ++r) lane[r] += xt[(v * W + l) * kBlock + r];
    for (int64_t r = 0; r < kBlock; ++r) total[r] += lane[r];
  }
  for (int64_t r = 0; r < rows; ++r) out[r] = 0.0f + total[r];
}

void block_sums(const float* xt, int64_t rows, int64_t n, int64_t width, float* out) {
  switch (width) {
    case 16: block_sums_w<16>(xt, rows, n, out); break;
    case 8: block_sums_w<8>(xt, rows, n, out); break;
    default: block_sums_w<4>(xt, rows, n, out); break;
  }
}

// The vector width (16, 8 or 4 floats) with which block_sums (the kernel ops' sums) reproduces at::sum over the
// last axis for every tested length, a full block and a partial one, or -1; remembered for the kernel ops.
int64_t calibrate_kernel_sum() {
  at::Generator gen = at::detail::createCPUGenerator(321);
  g_sum_width = -1;
  for (int64_t width : {16, 8, 4}) {
    bool ok = true;
    for (int64_t n : {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 20, 24, 31, 32, 33, 40, 64, 65, 100, 257, 1031}) {
      constexpr int64_t rows = kBlock + 5;
      at::Tensor x = at::randn({rows, n}, gen) * at::pow(10.0, at::randint(-3, 4, {rows, n}, gen));
      at::Tensor want = x.sum(-1);
      at::Tensor xt = at::zeros({n, kBlock});  // a block's rows, transposed
      std::vector<float> got(rows);
      for (int64_t r0 = 0; r0 < rows; r0 += kBlock) {
        const int64_t here = std::min(kBlock, rows - r0);
        xt.narrow(1, 0, here).copy_(x.narrow(0, r0, here).t());
        block_sums(xt.data_ptr<float>(), here, n, width, got.data() + r0);
      }
      ok = std::memcmp(got.data(), want.data_ptr<float>(), rows * sizeof(float)) == 0;
      if (!ok) break;
    }
    if (ok) {
      g_sum_width = width;
      break;
    }
  }
  return g_sum_width;
}

// For the element rows of (n, b, d) (each with its D terms), block by block of at most kBlock rows within a member:
// block(first row, rows, per row its alpha row).
template <typename Block>
void for_each_block_t(int64_t n, int64_t b, int64_t d, int64_t A, int64_t D, const float* pa, Block block) {
  const float* rows_alpha[kBlock];
  for (int64_t m = 0; m < n; ++m) {
    const int64_t first = m * b * d, last = first + b * d;
    for (int64_t r0 = first; r0 < last; r0 += kBlock) {
      const int64_t rows = std::min(kBlock, last - r0);
      for (int64_t j = 0; j < rows; ++j) rows_alpha[j] = pa + (m * A + (A == 1 ? 0 : (r0 + j) % d)) * D;
      block(r0, rows, rows_alpha);
    }
  }
}

// dst[i * 16 + j] = src[j * ld + i] for i, j < 16: a block's 16 rows of 16 terms, transposed (data movement only,
// so the same values whichever way; 16 x 16 shuffles where the CPU has AVX-512).
static_assert(kBlock == 16, "transpose16 moves blocks of 16 rows");
inline void transpose16(const float* src, int64_t ld, float* dst) {
#if defined(__AVX512F__)
  __m512 r[16], t[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(src + i * ld);
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int h = 0; h < 16; h += 8) {
    for (int i = 0; i < 4; ++i) {
      t[h + i] = _mm512_shuffle_f32x4(r[h + i], r[h + i + 4], 0x88);
      t[h + i + 4] = _mm512_shuffle_f32x4(r[h + i], r[h + i + 4], 0xDD);
    }
  }
  for (int i = 0; i < 8; ++i) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xDD);
  }
  for (int i = 0; i < 16; ++i) _mm512_storeu_ps(dst + i * 16, r[i]);
#else
  for (int64_t i = 0; i < 16; ++i)
    for (int64_t j = 0; j < 16; ++j) dst[i * 16 + j] = src[j * ld + i];
#endif
}

// The transposed block (term i of row j at i * kBlock + j, what block_sums reads) of rows written row-major into
// `rows` (row j at j * ld, ld a multiple of 16 at least D): whole tiles of 16 terms.
inline void transpose_block(const float* rows, int64_t ld, int64_t D, float* out) {
  for (int64_t c0 = 0; c0 < D; c0 += 16) transpose16(rows + c0, ld, out + c0 * kBlock);
}

void check_kernel_args(const at::Tensor& u, const at::Tensor& dictionary, const at::Tensor& alpha) {
  check_sum_width("kernel_terms");
  TORCH_CHECK(u.scalar_type() == at::kFloat && dictionary.scalar_type() == at::kFloat &&
              alpha.scalar_type() == at::kFloat, "kernel_terms: float32 tensors only");
  TORCH_CHECK(u.dim() == 3 && u.is_contiguous() && dictionary.dim() == 1 && dictionary.is_contiguous() &&
              alpha.dim() == 3 && alpha.is_contiguous(), "kernel_terms: u (n, b, d), dictionary (D,), alpha (n, 1 or d, D)");
  TORCH_CHECK(alpha.size(0) == u.size(0) && (alpha.size(1) == 1 || alpha.size(1) == u.size(2)) &&
              alpha.size(2) == dictionary.size(0), "kernel_terms: alpha's shape does not match u and the dictionary");
}

// Forward: returns (k, e) with k (n, b, d) = sum_i e_i alpha_i and e (n, b, d, D) the terms exp(-gamma (u - d_i)^2)
// (0 below the floor), as _kernel_forward computes them from u = clamp(z, d_0, d_last).
std::vector<at::Tensor> kernel_terms_forward(const at::Tensor& u, const at::Tensor& dictionary, double neg_gamma,
                                             double floor, const at::Tensor& alpha) {
  check_kernel_args(u, dictionary, alpha);
  at::AutoDispatchBelowADInplaceOrView guard;
  const int64_t n = u.size(0), b = u.size(1), d = u.size(2), D = dictionary.size(0), A = alpha.size(1);
  const float ng = static_cast<float>(neg_gamma), fl = static_cast<float>(floor);
  at::Tensor e = at::empty({n, b, d, D}, u.options());
  at::Tensor k = at::empty({n, b, d}, u.options());
  const float* pu = u.data_ptr<float>();
  const float* pd = dictionary.data_ptr<float>();
  float* pe = e.data_ptr<float>();
  const int64_t rows = n * b * d;
  for (int64_t r = 0; r < rows; ++r) {
    const float ur = pu[r];
    float* er = pe + r * D;
    for (int64_t i = 0; i < D; ++i) {
      const float diff = ur - pd[i];
      const float a = (diff * diff) * ng;
      er[i] = a < fl ? kTermMark : a;
    }
  }
  e.exp_();
  const float* pa = alpha.data_ptr<float>();
  float* pk = k.data_ptr<float>();
  // each block's products row by row (contiguous, vectorised), then transposed in tiles for block_sums: a scalar
  // store per term into the transposed block was most of this pass's time
  const int64_t Dp = (D + 15) / 16 * 16;
  std::vector<float> rows_buf(kBlock * Dp, 0.0f), prod(Dp * kBlock, 0.0f);
  const int64_t width = g_sum_width;
  for_each_block_t(n, b, d, A, D, pa, [&](int64_t r0, int64_t nr, const float* const* ar) {
    for (int64_t j = 0; j < nr; ++j) {
      float* er = pe + (r0 + j) * D;
      float* pr = rows_buf.data() + j * Dp;
      const float* a = ar[j];
      for (int64_t i = 0; i < D; ++i) {
        const float t = er[i] < kTermCut ? 0.0f : er[i];
        er[i] = t;
        pr[i] = t * a[i];
      }
    }
    transpose_block(rows_buf.data(), Dp, D, prod.data());
    block_sums(prod.data(), nr, D, width, pk + r0);
  });
  return {k, e};
}

// Backward: returns (p, gu) with p (n, b, d, D) = grad e_i (summed to alpha's shape by the caller, as autograd
// does) and gu (n, b, d) the gradient of u: sum_i ((grad alpha_i) e_i (-gamma)) (2 (u - d_i)), as _kernel_backward.
std::vector<at::Tensor> kernel_terms_backward(const at::Tensor& grad, const at::Tensor& u, const at::Tensor& dictionary,
                                              double neg_gamma, const at::Tensor& alpha, const at::Tensor& e) {
  check_kernel_args(u, dictionary, alpha);
  TORCH_CHECK(grad.sizes() == u.sizes() && grad.is_contiguous() && grad.scalar_type() == at::kFloat &&
              e.is_contiguous() && e.dim() == 4 && e.size(3) == dictionary.size(0) && e.numel() == u.numel() * e.size(3),
              "kernel_terms_backward: grad like u, e (n, b, d, D)");
  at::AutoDispatchBelowADInplaceOrView guard;
  const int64_t n = u.size(0), b = u.size(1), d = u.size(2), D = dictionary.size(0), A = alpha.size(1);
  const float ng = static_cast<float>(neg_gamma);
  at::Tensor p = at::empty({n, b, d, D}, u.options());
  at::Tensor gu = at::empty({n, b, d}, u.options());
  const float *pg = grad.data_ptr<float>(), *pu = u.data_ptr<float>(), *pd = dictionary.data_ptr<float>();
  const float *pa = alpha.data_ptr<float>(), *pe = e.data_ptr<float>();
  float* pp = p.data_ptr<float>();
  float* pgu = gu.data_ptr<float>();
  const int64_t Dp = (D + 15) / 16 * 16;  // row by row, then transposed, as in kernel_terms_forward
  std::vector<float> rows_buf(kBlock * Dp, 0.0f), q(Dp * kBlock, 0.0f);
  const int64_t width = g_sum_width;
  for_each_block_t(n, b, d, A, D, pa, [&](int64_t r0, int64_t nr, const float* const* ar) {
    for (int64_t j = 0; j < nr; ++j) {
      const int64_t r = r0 + j;
      const float g = pg[r], ur = pu[r];
      const float* er = pe + r * D;
      const float* a = ar[j];
      float* prow = pp + r * D;
      float* qr = rows_buf.data() + j * Dp;
      for (int64_t i = 0; i < D; ++i) {
        prow[i] = g * er[i];
        qr[i] = (((g * a[i]) * er[i]) * ng) * ((ur - pd[i]) * 2.0f);
      }
    }
    transpose_block(rows_buf.data(), Dp, D, q.data());
    block_sums(q.data(), nr, D, width, pgu + r0);
  });
  return {p, gu};
}


// The kernel family's whole pass (family_segments.py: _kernel_clamp, _kernel_out, _kernel_grads around the
// terms above): the clamp to the dictionary's range and the linear tails are the same ATen calls as in Python.
// Returns [out, then what kernel_backward reads: z, clamped_lo, lo, hi, u, e, r1, r0, t1, t0].
std::vector<at::Tensor> kernel_forward(const at::Tensor& z_in, const at::Tensor& dictionary, double neg_gamma,
                                       double floor, const at::Tensor& alpha, const at::Tensor& tails) {
  at::AutoDispatchBelowADInplaceOrView guard;
  const at::Tensor z = z_in.contiguous();  // a batched product may leave it transposed: the same values
  at::Tensor lo = dictionary.select(-1, 0), hi = dictionary.select(-1, dictionary.size(-1) - 1);
  at::Tensor clamped_lo = at::maximum(z, lo);
  at::Tensor u = at::minimum(clamped_lo, hi);
  std::vector<at::Tensor> ke = kernel_terms_forward(u, dictionary, neg_gamma, floor, alpha);
  at::Tensor t1 = tails.select(-1, 1), t0 = tails.select(-1, 0);
  at::Tensor r1 = at::relu(at::sub(z, hi));
  at::Tensor r0 = at::relu(at::sub(lo, z));
  at::Tensor out = at::sub(at::add(ke[0], at::mul(t1, r1)), at::mul(t0, r0));
  return {out, z, clamped_lo, lo, hi, u, ke[1], r1, r0, t1, t0};
}

// Returns [the gradient of z, the products grad * e_i (the caller sums them to alpha's shape), of the tails].
std::vector<at::Tensor> kernel_backward(const at::Tensor& grad_in, const std::vector<at::Tensor>& sv,
                                        const at::Tensor& dictionary, double neg_gamma, const at::Tensor& alpha,
                                        at::IntArrayRef tails_shape) {
  at::AutoDispatchBelowADInplaceOrView guard;
  // contiguous, like z in kernel_forward: the sums to the parameters' shapes then add in the order they add
  // for a lone model's (contiguous) layer
  const at::Tensor grad = grad_in.contiguous();
  TORCH_CHECK(sv.size() == 10, "kernel_backward: the saved tensors of kernel_forward, without its output");
  const at::Tensor &z = sv[0], &clamped_lo = sv[1], &lo = sv[2], &hi = sv[3], &u = sv[4], &e = sv[5], &r1 = sv[6],
                   &r0 = sv[7], &t1 = sv[8], &t0 = sv[9];
  at::Tensor gm = at::neg(grad);
  at::Tensor g_t0 = at::mul(gm, r0).sum_to_size(t0.sizes());
  at::Tensor from_left = at::neg(at::threshold_backward(at::mul(gm, t0), r0, 0));
  at::Tensor g_t1 = at::mul(grad, r1).sum_to_size(t1.sizes());
  at::Tensor from_right = at::threshold_backward(at::mul(grad, t1), r1, 0);
  std::vector<at::Tensor> pg = kernel_terms_backward(grad, u, dictionary, neg_gamma, alpha, e);
  const at::Tensor& gu = pg[1];
  at::Tensor g_lo = at::where(at::eq(clamped_lo, hi), at::div(gu, 2), gu).masked_fill_(at::gt(clamped_lo, hi), 0);
  at::Tensor g_z = at::where(at::eq(z, lo), at::div(g_lo, 2), g_lo).masked_fill_(at::lt(z, lo), 0);
  at::Tensor left = at::zeros(tails_shape, grad.options()), right = at::zeros(tails_shape, grad.options());
  left.select(-1, 0).copy_(g_t0);
  right.select(-1, 1).copy_(g_t1);
  return {at::add(at::add(from_left, from_right), g_z), pg[0], at::add(left, right)};
}

// ---- The rational family's pass (family_segments.py: _rational_forward / _rational_backward) ----
// The Python derived pass follows autograd's graph of families.rational node by node, over (n, b, d, k)
// temporaries: the stacked powers and their products with the coefficients, a dozen ATen calls each way. Here
// each element's IEEE operations run in that pass's order in one loop each way: the powers x^0 .. x^3 as ATen's
// pow computes them (1, a copy, x * x, x * x * x), higher ones by ATen's pow itself (its vectorised kernel with
// a scalar tail); the sums over the coefficients in ATen's order for a contiguous last axis (inner_sum, with the
// width calibrate_kernel_sum() found); and the products summed to the coefficients' shapes by the same ATen
// sum_to_size on the same contiguous (n, b, d, k) values. z and grad are made contiguous first, like a lone
// model's layer (a batched product may leave them transposed: the same values, but the sums to the
// coefficients' shapes would add in another order).


void check_rational_args(const at::Tensor& z, const at::Tensor& num, const at::Tensor& den) {
  check_sum_width("rational");
  TORCH_CHECK(z.dim() == 3 && z.is_contiguous() && z.scalar_type() == at::kFloat, "rational: z (n, b, d) float32");
  for (const at::Tensor* c : {&num, &den})
    TORCH_CHECK(c->dim() == 4 && c->is_contiguous() && c->scalar_type() == at::kFloat && c->size(0) == z.size(0) &&
                c->size(1) == 1 && (c->size(2) == 1 || c->size(2) == z.size(2)),
                "rational: coefficients (n, 1, 1 or d, k) float32");
  TORCH_CHECK(num.size(-1) >= 1 && num.size(-1) <= kMaxTerms && den.size(-1) < kMaxTerms,
              "rational: at most ", kMaxTerms, " coefficients");
}

// Calls f(i, numerator row, denominator row) for every element i of a contiguous (n, b, d) tensor, the rows those
// of its member and unit.
template <typename F>
void for_each_rational(const at::Tensor& z, const at::Tensor& num, const at::Tensor& den, F f) {
  const int64_t n = z.size(0), b = z.size(1), d = z.size(2), kn = num.size(-1), kd = den.size(-1);
  const int64_t num_units = num.size(2), den_units = den.size(2);
  const float *pn = num.data_ptr<float>(), *pd = den.data_ptr<float>();
  for (int64_t m = 0, i = 0; m < n; ++m)
    for (int64_t row = 0; row < b; ++row)
      for (int64_t u = 0; u < d; ++u, ++i)
        f(i, pn + (m * num_units + (num_units == 1 ? 0 : u)) * kn,
          pd + (m * den_units + (den_units == 1 ? 0 : u)) * kd);
}

// x^0 .. x^degree of element i into p: up to x^3 as ATen's pow kernels compute them, beyond from `high` (ATen's
// pow of the whole tensor, x^4 first).
inline void rational_powers(float x, int64_t i, int64_t degree, const std::vector<const float*>& high, float* p) {
  p[0] = 1.0f;
  if (degree >= 1) p[1] = x;
  if (degree >= 2) p[2] = x * x;
  if (degree >= 3) p[3] = x * x * x;
  for (int64_t j = 4; j <= degree; ++j) p[j] = high[j - 4][i];
}

// Returns [out, z (contiguous), top, q, w, then x^4 .. x^degree where degree > 3].
std::vector<at::Tensor> rational_forward(const at::Tensor& z_in, const at::Tensor& num_in, const at::Tensor& den_in) {
  at::AutoDispatchBelowADInplaceOrView guard;
  const at::Tensor z = z_in.contiguous(), num = num_in.contiguous(), den = den_in.contiguous();
  check_rational_args(z, num, den);
  const int64_t m = num.size(-1) - 1, n = den.size(-1), degree = std::max(m, n), width = g_sum_width;
  std::vector<at::Tensor> out{at::empty_like(z), z, at::empty_like(z), at::empty_like(z), at::empty_like(z)};
  std::vector<const float*> high;
  for (int64_t j = 4; j <= degree; ++j) {
    out.push_back(at::pow(z, j));
    high.push_back(out.back().data_ptr<float>());
  }
  const float* pz = z.data_ptr<float>();
  float *po = out[0].data_ptr<float>(), *ptop = out[2].data_ptr<float>(), *pq = out[3].data_ptr<float>(),
        *pw = out[4].data_ptr<float>();
  for_each_rational(z, num, den, [&](int64_t i, const float* a, const float* c) {
    float p[kMaxTerms], prod[kMaxTerms];
    rational_powers(pz[i], i, degree, high, p);
    for (int64_t j = 0; j <= m; ++j) prod[j] = p[j] * a[j];
    const float top = inner_sum(prod, m + 1, width);
    for (int64_t j = 0; j < n; ++j) prod[j] = p[j + 1] * c[j];
    const float q = inner_sum(prod, n, width);
    const float w = std::fabs(q) + 1.0f;
    ptop[i] = top;
    pq[i] = q;
    pw[i] = w;
    po[i] = top / w;
  });
  return out;
}

// Returns [the gradient of z, of the numerator, of the denominator].
std::vector<at::Tensor> rational_backward(const at::Tensor& grad_in, const at::Tensor& z, const at::Tensor& top,
                                          const at::Tensor& q, const at::Tensor& w, const at::Tensor& num_in,
                                          const at::Tensor& den_in, at::TensorList highs) {
  at::AutoDispatchBelowADInplaceOrView guard;
  const at::Tensor grad = grad_in.contiguous(), num = num_in.contiguous(), den = den_in.contiguous();
  check_rational_args(z, num, den);
  const int64_t m = num.size(-1) - 1, n = den.size(-1), degree = std::max(m, n);
  TORCH_CHECK(static_cast<int64_t>(highs.size()) == std::max<int64_t>(degree - 3, 0), "rational: powers");
  std::vector<const float*> high;
  for (const at::Tensor& h : highs) high.push_back(h.data_ptr<float>());
  at::Tensor gz = at::empty_like(z);
  at::Tensor num_terms = at::empty({z.size(0), z.size(1), z.size(2), m + 1}, z.options());
  at::Tensor den_terms = at::empty({z.size(0), z.size(1), z.size(2), n}, z.options());
  const float *pz = z.data_ptr<float>(), *pg = grad.data_ptr<float>(), *ptop = top.data_ptr<float>(),
              *pq = q.data_ptr<float>(), *pw = w.data_ptr<float>();
  float *pgz = gz.data_ptr<float>(), *pnt = num_terms.data_ptr<float>(), *pdt = den_terms.data_ptr<float>();
  for_each_rational(z, num, den, [&](int64_t i, const float* a, const float* c) {
    float p[kMaxTerms], g_xp[kMaxTerms];
    rational_powers(pz[i], i, degree, high, p);
    const float g = pg[i], wi = pw[i], qi = pq[i];
    const float g_top = g / wi;  // DivBackward0: grad / w, and -grad ((top / w) / w) for 1 + |q|
    const float g_w = (-g) * ((ptop[i] / wi) / wi);
    const float sign = static_cast<float>(0.0f < qi) - static_cast<float>(qi < 0.0f);  // ATen's sgn of a real
    const float g_q = g_w * sign;
    for (int64_t j = 0; j < n; ++j) pdt[i * n + j] = g_q * p[j + 1];
    for (int64_t j = 0; j <= m; ++j) pnt[i * (m + 1) + j] = g_top * p[j];
    for (int64_t j = 0; j <= degree; ++j) {  // the slices' backward into zeros, the denominator's branch first
      const float from_q = (j >= 1 && j <= n) ? g_q * c[j - 1] : 0.0f;
      const float from_top = j <= m ? g_top * a[j] : 0.0f;
      g_xp[j] = from_q + from_top;
    }
    // StackBackward0, then each PowBackward0 (grad j x^(j - 1); zeros for j = 0), the last power's first
    float acc = g_xp[degree] * (p[degree - 1] * static_cast<float>(degree));
    for (int64_t j = degree - 1; j > 0; --j) acc = acc + g_xp[j] * (p[j - 1] * static_cast<float>(j));
    pgz[i] = acc + 0.0f;
  });
  return {gz, num_terms.sum_to_size(num.sizes()), den_terms.sum_to_size(den.sizes())};
}

// ---- The pwl family's pass, per-layer values (family_segments.py: _pwl_forward / _pwl_backward) ----
// Each element's interval, position and interpolation in one loop, the IEEE operations of the Python pass in its
// order (lo and the step as the float32 scalars ATen makes of them); backward, the scatter into the members'
// rows adds element by element in order, as index_put_ with accumulate does, each end of the interval into its
// own zeroed table, the two tables added after. Returns [out, at (the left knot's row index), t, r].
std::vector<at::Tensor> pwl_forward(const at::Tensor& z_in, const at::Tensor& values_in, double lo, double step) {
  at::AutoDispatchBelowADInplaceOrView guard;
  const at::Tensor z = z_in.contiguous(), values = values_in.contiguous();
  TORCH_CHECK(z.dim() == 3 && z.scalar_type() == at::kFloat && values.scalar_type() == at::kFloat &&
              values.size(0) == z.size(0) && values.numel() % z.size(0) == 0, "pwl: z (n, b, d), values (n, ., K+1)");
  const int64_t n = z.size(0), per = z.numel() / std::max<int64_t>(n, 1), size = values.numel() / n, k = size - 1;
  TORCH_CHECK(k >= 1, "pwl: at least two knots");
  const float lof = static_cast<float>(lo), stepf = static_cast<float>(step);
  const float top = static_cast<float>(static_cast<double>(k) - 1e-6);
  at::Tensor out = at::empty_like(z), t = at::empty_like(z), r = at::empty_like(z);
  at::Tensor at_ = at::empty(z.sizes(), z.options().dtype(at::kLong));
  const float *pz = z.data_ptr<float>(), *pv = values.data_ptr<float>();
  float *po = out.data_ptr<float>(), *pt = t.data_ptr<float>(), *pr = r.data_ptr<float>();
  int64_t* pa = at_.data_ptr<int64_t>();
  for (int64_t m = 0, i = 0; m < n; ++m)
    for (int64_t e = 0; e < per; ++e, ++i) {
      const float s = (pz[i] - lof) / stepf;
      const float c = std::min(std::max(s, 0.0f), top);  // clamp(0, k - 1e-6): NaN stays NaN
      const float f = std::floor(c);
      int64_t idx = std::isnan(f) ? 0 : static_cast<int64_t>(f);  // .long() of NaN is INT64_MIN: clamped to 0
      idx = std::min(std::max<int64_t>(idx, 0), k - 1);
      const int64_t a = m * size + idx;
      const float left = pv[a], right = pv[a + 1];
      const float tv = s - static_cast<float>(idx);
      const float rv = right - left;
      pa[i] = a;
      pt[i] = tv;
      pr[i] = rv;
      po[i] = left + tv * rv;
    }
  return {out, at_, t, r};
}

// Returns [the gradient of z, of the values (flat, n * (K + 1))].
std::vector<at::Tensor> pwl_backward(const at::Tensor& grad_in, const at::Tensor& at_, const at::Tensor& t,
                                     const at::Tensor& r, double step, int64_t numel) {
  at::AutoDispatchBelowADInplaceOrView guard;
  const at::Tensor grad = grad_in.contiguous();
  TORCH_CHECK(grad.sizes() == t.sizes() && at_.is_contiguous() && t.is_contiguous() && r.is_contiguous() &&
              grad.scalar_type() == at::kFloat, "pwl: grad like z");
  const float stepf = static_cast<float>(step);
  at::Tensor gz = at::empty_like(grad), left = at::zeros({numel}, grad.options()),
             right = at::zeros({numel}, grad.options());
  const float *pg = grad.data_ptr<float>(), *pt = t.data_ptr<float>(), *pr = r.data_ptr<float>();
  const int64_t* pa = at_.data_ptr<int64_t>();
  float *pgz = gz.data_ptr<float>(), *pl = left.data_ptr<float>(), *prt = right.data_ptr<float>();
  const int64_t count = grad.numel();
  for (int64_t i = 0; i < count; ++i) {
    const float g = pg[i];
    const float g_r = g * pt[i];
    pl[pa[i]] += g + (-g_r);
    prt[pa[i] + 1] += g_r;
    pgz[i] = (g * pr[i]) / stepf;
  }
  return {gz, at::add(left, right)};
}

// ---- The maxout family's backward (family_segments.py: _maxout_backward) ----
// amax's backward shares each element's gradient among the pieces equal to its maximum; the Python pass builds
// the mask, the counts and three (n, b, d, J) products for it. Here one loop per element does the same IEEE
// operations (grad / count, times the mask as 1 or 0, times x and times the slopes), the sum over the pieces in
// ATen's last-axis order (inner_sum), and the sums over the batch to the parameters' shapes are ATen's
// sum_to_size on the same contiguous products.
std::vector<at::Tensor> maxout_backward(const at::Tensor& grad_in, const at::Tensor& xu_in, const at::Tensor& q_in,
                                        const at::Tensor& out_in, const at::Tensor& slopes_in,
                                        const at::Tensor& offsets) {
  at::AutoDispatchBelowADInplaceOrView guard;
  check_sum_width("maxout");
  const at::Tensor grad = grad_in.contiguous(), xu = xu_in.contiguous(), q = q_in.contiguous(),
                   out = out_in.contiguous(), slopes = slopes_in.contiguous();
  TORCH_CHECK(q.dim() == 4 && grad.dim() == 3 && grad.sizes() == out.sizes() && xu.numel() == grad.numel() &&
              q.numel() == grad.numel() * q.size(3) && q.scalar_type() == at::kFloat &&
              grad.scalar_type() == at::kFloat, "maxout: grad (n, b, d), q (n, b, d, J) float32");
  const int64_t n = q.size(0), b = q.size(1), d = q.size(2), J = q.size(3);
  TORCH_CHECK(J >= 1 && J <= kMaxTerms && slopes.dim() == 4 && slopes.size(0) == n && slopes.size(1) == 1 &&
              (slopes.size(2) == 1 || slopes.size(2) == d) && slopes.size(3) == J &&
              slopes.scalar_type() == at::kFloat, "maxout: slopes (n, 1, 1 or d, J) float32");
  at::Tensor gq = at::empty_like(q), gx = at::empty_like(q), gz = at::empty_like(grad);
  const float *pg = grad.data_ptr<float>(), *px = xu.data_ptr<float>(), *pq = q.data_ptr<float>(),
              *po = out.data_ptr<float>(), *ps = slopes.data_ptr<float>();
  float *pgq = gq.data_ptr<float>(), *pgx = gx.data_ptr<float>(), *pgz = gz.data_ptr<float>();
  const int64_t units = slopes.size(2), width = g_sum_width;
  for (int64_t m = 0, i = 0; m < n; ++m)
    for (int64_t row = 0; row < b; ++row)
      for (int64_t u = 0; u < d; ++u, ++i) {
        const float* qi = pq + i * J;
        const float* si = ps + (m * units + (units == 1 ? 0 : u)) * J;
        const float o = po[i], x = px[i];
        int64_t count = 0;
        for (int64_t j = 0; j < J; ++j) count += qi[j] == o;
        const float share = pg[i] / static_cast<float>(count);
        float prod[kMaxTerms];
        for (int64_t j = 0; j < J; ++j) {
          const float g = share * (qi[j] == o ? 1.0f : 0.0f);
          pgq[i * J + j] = g;
          pgx[i * J + j] = g * x;
          prod[j] = g * si[j];
        }
        pgz[i] = inner_sum(prod, J, width);
      }
  return {gz, gx.sum_to_size(slopes.sizes()), gq.sum_to_size(offsets.sizes())};
}

// ---- The cubic spline family's pass (family_segments.py: _spline_forward / _spline_backward) ----
// The Python derived pass follows autograd's graph of families.spline node by node. Its element-wise part (the
// cell position t, the B-spline recursion, the weighted sum of the four coefficients and, backward, the chain
// rule through them) is one loop here, each element's IEEE operations in the pass's order; the base function
// (a candidate code), the coefficients' gather and scatter, and the reductions to the weights' shapes are the
// same ATen calls.

// The recursion's values at t (order 3), in the Python pass's operations.
struct Cubic {
  float rest, a, cc, e, f, g, hh, j, el, m, o, q, r, ss;
  explicit Cubic(float t) {
    rest = 1.0f - t;
    a = t + 1.0f;
    cc = 2.0f - t;
    e = a * rest + cc * t;
    f = rest * rest;
    g = t * t;
    hh = t + 2.0f;
    j = 2.0f - t;
    el = hh * f + j * e;
    m = t + 1.0f;
    o = 3.0f - t;
    q = m * e + o * g;
    r = rest * f;
    ss = t * g;
  }
};

// Calls f(i, base weight, spline weight) for every element i of a contiguous (n, b, d) tensor, the weights
// (n, 1, 1) or (n, 1, d) read at its member and unit.
template <typename F>
void for_each_element(const at::Tensor& z, const at::Tensor& base_weight, const at::Tensor& spline_weight, F f) {
  const int64_t n = z.size(0), b = z.size(1), d = z.size(2);
  const float *pbw = base_weight.data_ptr<float>(), *psw = spline_weight.data_ptr<float>();
  const int64_t bw_units = base_weight.size(-1), sw_units = spline_weight.size(-1);
  for (int64_t m = 0, i = 0; m < n; ++m)
    for (int64_t row = 0; row < b; ++row)
      for (int64_t u = 0; u < d; ++u, ++i)
        f(i, pbw[m * bw_units + (bw_units == 1 ? 0 : u)], psw[m * sw_units + (sw_units == 1 ? 0 : u)]);
}

void check_spline_args(const at::Tensor& z, const at::Tensor& base_weight, const at::Tensor& spline_weight,
                       int64_t base_code) {
  TORCH_CHECK(base_code >= 0 && base_code < kCandidates, "spline3: unknown base code ", base_code);
  TORCH_CHECK(z.dim() == 3 && z.is_contiguous() && z.scalar_type() == at::kFloat, "spline3: z (n, b, d) float32");
  for (const at::Tensor* w : {&base_weight, &spline_weight})
    TORCH_CHECK(w->dim() == 3 && w->is_contiguous() && w->size(0) == z.size(0) && w->size(1) == 1 &&
                (w->size(2) == 1 || w->size(2) == z.size(2)), "spline3: weights (n, 1, 1) or (n, 1, d)");
}

// Returns [out, then what spline3_backward reads: t, the coefficients' window (n, b, d, 4), total, bx, index, h].
std::vector<at::Tensor> spline3_forward(const at::Tensor& z_in, const at::Tensor& knots,
                                        const at::Tensor& coefficients, const at::Tensor& base_weight,
                                        const at::Tensor& spline_weight, int64_t base_code) {
  const at::Tensor z = z_in.contiguous();  // a batched product may leave it transposed: the same values
  check_spline_args(z, base_weight, spline_weight, base_code);
  at::AutoDispatchBelowADInplaceOrView guard;
  const int64_t order = 3, n_knots = knots.size(-1), numel = z.numel();
  at::Tensor k0 = knots.select(-1, 0);
  at::Tensor h = at::div(at::sub(knots.select(-1, n_knots - 1), k0), n_knots - 1);
  const float k0f = k0.item<float>(), hf = h.item<float>();
  at::Tensor t = at::empty_like(z);
  at::Tensor start = at::empty(z.sizes(), z.options().dtype(at::kLong));
  const float* pz = z.data_ptr<float>();
  float* pt = t.data_ptr<float>();
  int64_t* ps = start.data_ptr<int64_t>();
  const float top = static_cast<float>(n_knots - 1);
  for (int64_t i = 0; i < numel; ++i) {
    const float sv = (pz[i] - k0f) / hf;
    const float cell = std::floor(sv);
    pt[i] = sv - cell;
    // nan_to_num(cell, nan=-1), clamp(-1, n_knots - 1), long, + 1 (infinities clamp to the ends)
    const float c = std::isnan(cell) ? -1.0f : std::min(std::max(cell, -1.0f), top);
    ps[i] = static_cast<int64_t>(c) + 1;
  }
  at::Tensor padded = at::constant_pad_nd(at::mul(coefficients, 1.0 / 6.0), {order + 1, order + 1}, 0);
  const int64_t width = padded.size(-1);
  std::vector<int64_t> lead(padded.sizes().begin(), padded.sizes().end() - 1);
  at::Tensor rows = at::arange(0, (padded.numel() / width) * width, width, at::kLong).view(lead);
  at::Tensor index = at::add(at::add(rows, start).unsqueeze(-1), at::arange(order + 1, at::kLong)).reshape({-1});
  at::Tensor window = padded.reshape({-1}).index_select(0, index);  // (n b d 4,): element i's four at 4 i
  at::Tensor total = at::empty_like(z);
  const float* pw = window.data_ptr<float>();
  float* ptot = total.data_ptr<float>();
  for (int64_t i = 0; i < numel; ++i) {
    const Cubic v(pt[i]);
    const float* c = pw + 4 * i;
    float sum = v.r * c[0];
    sum = sum + v.el * c[1];
    sum = sum + v.q * c[2];
    ptot[i] = sum + v.ss * c[3];
  }
  at::Tensor bx = candidate(base_code, z);
  at::Tensor out = at::empty_like(z);
  const float* pbx = bx.data_ptr<float>();
  float* po = out.data_ptr<float>();
  for_each_element(z, base_weight, spline_weight,
                   [&](int64_t i, float bw, float sw) { po[i] = bw * pbx[i] + sw * ptot[i]; });
  return {out, t, window, total, bx, index, h};
}

// Returns [the gradient of z, of the coefficients (their shape), of base_weight, of spline_weight].
std::vector<at::Tensor> spline3_backward(const at::Tensor& grad, const at::Tensor& z_in,
                                         const std::vector<at::Tensor>& sv, const at::Tensor& base_weight,
                                         const at::Tensor& spline_weight, int64_t base_code,
                                         at::IntArrayRef coefficients_shape, at::IntArrayRef padded_shape) {
  const at::Tensor z = z_in.contiguous();
  check_spline_args(z, base_weight, spline_weight, base_code);
  TORCH_CHECK(sv.size() == 6, "spline3_backward: the saved tensors of spline3_forward, without its output");
  TORCH_CHECK(grad.sizes() == z.sizes() && grad.scalar_type() == at::kFloat, "spline3_backward: grad like z");
  at::AutoDispatchBelowADInplaceOrView guard;
  const at::Tensor g_in = grad.contiguous();
  const at::Tensor &t = sv[0], &window = sv[1], &total = sv[2], &bx = sv[3], &index = sv[4], &h = sv[5];
  const int64_t order = 3;
  at::Tensor g_sw = at::mul(g_in, total).sum_to_size(spline_weight.sizes());
  at::Tensor g_bw = at::mul(g_in, bx).sum_to_size(base_weight.sizes());
  at::Tensor g_bx = at::empty_like(z);
  const float* pg = g_in.data_ptr<float>();
  float* pgbx = g_bx.data_ptr<float>();
  for_each_element(z, base_weight, spline_weight, [&](int64_t i, float bw, float) { pgbx[i] = pg[i] * bw; });
  at::Tensor from_base = candidate_backward(base_code, g_bx, z, bx);
  at::Tensor g_window = at::empty_like(window);
  at::Tensor gz = at::empty_like(z);
  const float hf = h.item<float>();
  const float *pt = t.data_ptr<float>(), *pw = window.data_ptr<float>(), *pfb = from_base.data_ptr<float>();
  float *pgw = g_window.data_ptr<float>(), *pgz = gz.data_ptr<float>();
  for_each_element(z, base_weight, spline_weight, [&](int64_t i, float, float sw) {
    const float tv = pt[i];
    const Cubic v(tv);
    const float* c = pw + 4 * i;
    const float gT = pg[i] * sw;
    float* gw = pgw + 4 * i;
    gw[0] = gT * v.r;
    gw[1] = gT * v.el;
    gw[2] = gT * v.q;
    gw[3] = gT * v.ss;
    const float g_ss = gT * c[3], g_q = gT * c[2], g_el = gT * c[1], g_r = gT * c[0];
    float g_t = g_ss * v.g;
    float g_g = g_ss * tv;
    float g_rest = g_r * v.f;
    float g_f = g_r * v.rest;
    g_g = g_g + g_q * v.o;
    g_t = g_t - g_q * v.g;
    float g_e = g_q * v.m;
    g_t = g_t + g_q * v.e;
    g_e = g_e + g_el * v.j;
    g_t = g_t - g_el * v.e;
    g_f = g_f + g_el * v.hh;
    g_t = g_t + g_el * v.f;
    const float g_tt = g_g * tv;
    g_t = g_t + g_tt;
    g_t = g_t + g_tt;
    const float g_rr = g_f * v.rest;
    g_rest = g_rest + g_rr;
    g_rest = g_rest + g_rr;
    g_t = g_t + g_e * v.cc;
    g_t = g_t - g_e * tv;
    g_rest = g_rest + g_e * v.a;
    g_t = g_t + g_e * v.rest;
    g_t = g_t - g_rest;
    const float g_s = g_t + 0.0f;
    pgz[i] = pfb[i] + g_s / hf;
  });
  int64_t count = 1;
  for (int64_t v : padded_shape) count *= v;
  at::Tensor flat = at::zeros({count}, grad.options()).index_add_(0, index, g_window);
  const int64_t size = coefficients_shape.back();
  at::Tensor g_coefficients = at::mul(flat.view(padded_shape).slice(-1, order + 1, order + 1 + size), 1.0 / 6.0);
  return {gz, g_coefficients, g_bw, g_sw};
}

std::vector<int64_t> layout() { return {kSpecVersion, kCandidates}; }

}  // namespace

TORCH_LIBRARY(learnact_native, m) {
  m.def("layout() -> int[]", &layout);
  m.def("train_step(Tensor[] tensors, int[] spec, int[] choices, int[] ranges, float[] scalars, Tensor x_rows, "
        "Tensor y_rows, Tensor index, int lo, int nb, int step) -> Tensor[]",
        &train_step);
  m.def("evaluate(Tensor[] tensors, int[] spec, int[] choices, Tensor x, Tensor y) -> Tensor[]", &evaluate);
  m.def("candidate(int code, Tensor z) -> Tensor", &candidate_op);
  m.def("member_products(int kind, Tensor a, Tensor b, Tensor bias) -> Tensor", &member_products);
  m.def("calibrate(bool enable) -> int[]", &calibrate);
  m.def("adam_step(Tensor(a!) flat, Tensor(b!) grad, Tensor(c!) exp_avg, Tensor(d!) exp_avg_sq, Tensor(e!) denom, "
        "int step, float lr, float weight_decay, int[] ranges=[]) -> ()", &adam_step_);
  m.def("candidate_backward(int code, Tensor g, Tensor z, Tensor y) -> Tensor", &candidate_backward_op);
  m.def("calibrate_kernel_sum() -> int", &calibrate_kernel_sum);
  m.def("kernel_forward(Tensor z, Tensor dictionary, float neg_gamma, float floor, Tensor alpha, Tensor tails) "
        "-> Tensor[]", &kernel_forward);
  m.def("kernel_backward(Tensor grad, Tensor[] saved, Tensor dictionary, float neg_gamma, Tensor alpha, "
        "int[] tails_shape) -> Tensor[]", &kernel_backward);
  m.def("rational_forward(Tensor z, Tensor numerator, Tensor denominator) -> Tensor[]", &rational_forward);
  m.def("pwl_forward(Tensor z, Tensor values, float lo, float step) -> Tensor[]", &pwl_forward);
  m.def("pwl_backward(Tensor grad, Tensor at, Tensor t, Tensor r, float step, int numel) -> Tensor[]", &pwl_backward);
  m.def("maxout_backward(Tensor grad, Tensor xu, Tensor q, Tensor out, Tensor slopes, Tensor offsets) -> Tensor[]",
        &maxout_backward);
  m.def("rational_backward(Tensor grad, Tensor z, Tensor top, Tensor q, Tensor w, Tensor numerator, "
        "Tensor denominator, Tensor[] powers) -> Tensor[]", &rational_backward);
  m.def("spline3_forward(Tensor z, Tensor knots, Tensor coefficients, Tensor base_weight, Tensor spline_weight, "
        "int base_code) -> Tensor[]", &spline3_forward);
  m.def("spline3_backward(Tensor grad, Tensor z, Tensor[] saved, Tensor base_weight, Tensor spline_weight, "
        "int base_code, int[] coefficients_shape, int[] padded_shape) -> Tensor[]", &spline3_backward);
}
