# SPDX-License-Identifier: Apache-2.0
"""The fully connected model (RLlib's default FullyConnectedNetwork): a policy MLP giving
action logits and a value MLP (vf_share_layers=False), fcnet_hiddens wide, fcnet_activation
between.  The learner trains it in PyTorch; rollout workers run the same weights in numpy
(one small batch per step: no torch import, no per-call overhead in the workers)."""
import numpy as np

MODEL_DEFAULTS = {
    "fcnet_hiddens": [256, 256],
    "fcnet_activation": "tanh",
    "vf_share_layers": False,
    "free_log_std": False,
    "no_final_linear": False,
}

_ACTS = ("tanh", "relu", "linear", None)


def check_model(model):
    unknown = sorted(set(model) - set(MODEL_DEFAULTS))
    if unknown:
        raise ValueError(f"Unknown model config key(s) {unknown}: kray's model has "
                         f"{sorted(MODEL_DEFAULTS)}")
    hiddens = model["fcnet_hiddens"]
    if not isinstance(hiddens, (list, tuple)) or not all(
            isinstance(h, int) and h > 0 for h in hiddens):
        raise ValueError("model.fcnet_hiddens must be a list of positive layer sizes")
    if model["fcnet_activation"] not in _ACTS:
        raise ValueError(f"model.fcnet_activation must be one of {list(_ACTS)}")
    if model["free_log_std"] or model["no_final_linear"]:
        raise ValueError("kray's model has no free_log_std / no_final_linear")


def _act_np(name, x):
    if name == "tanh":
        return np.tanh(x)
    if name == "relu":
        return np.maximum(x, 0)
    return x


def mlp_forward(layers, x, act):
    """layers: [(W, b), ...]; the activation after every layer but the last."""
    for W, b in layers[:-1]:
        x = _act_np(act, x @ W + b)
    W, b = layers[-1]
    return x @ W + b


class NumpyPolicy:
    """The model's forward pass in numpy: weights as get_weights() gives them.  With
    separate policy and value MLPs of the same hidden sizes, both run as one: the first
    layers side by side (one product), the others stacked (one batched product per
    layer, the value's last layer padded to the logits' width), 8 numpy calls per step
    instead of 16: about 8 us instead of 14.5 for CartPole's one-row steps."""

    def __init__(self, weights, act, share):
        self.pi = weights["pi"]
        self.vf = weights.get("vf")
        self.act = act
        self.share = share
        self.stacked = None
        if not share and self.vf and len(self.pi) == len(self.vf) >= 2 and all(
                a[0].shape[1] == b[0].shape[1] for a, b in zip(self.pi[:-1], self.vf[:-1])):
            self.stacked = _stack_layers(self.pi, self.vf)

    def logits_values(self, obs):
        if self.share:
            h = obs
            for W, b in self.pi[:-2]:
                h = _act_np(self.act, h @ W + b)
            logits = h @ self.pi[-2][0] + self.pi[-2][1]
            values = (h @ self.pi[-1][0] + self.pi[-1][1])[:, 0]
            return logits, values
        if self.stacked is not None:
            (W1, b1), mids, (W, b) = self.stacked
            n = len(obs)
            h = _act_np(self.act, obs @ W1 + b1)  # [n, 2 h]: the two first layers
            h = h.reshape(n, 2, -1).transpose(1, 0, 2)  # [2, n, h]
            for Wm, bm in mids:
                h = _act_np(self.act, h @ Wm + bm)
            out = h @ W + b  # [2, n, logits]
            return out[0], out[1, :, 0]
        logits = mlp_forward(self.pi, obs, self.act)
        values = mlp_forward(self.vf, obs, self.act)[:, 0] if self.vf else None
        return logits, values


def _stack_layers(pi, vf):
    """NumpyPolicy's stacked weights: the first layers concatenated, the hidden ones
    stacked, the last ones stacked with the value's zero-padded to the logits' width."""
    W1 = np.concatenate([pi[0][0], vf[0][0]], axis=1)
    b1 = np.concatenate([pi[0][1], vf[0][1]])
    mids = [(np.stack([p[0], v[0]]), np.stack([p[1], v[1]])[:, None, :])
            for p, v in zip(pi[1:-1], vf[1:-1])]
    (Wp, bp), (Wv, bv) = pi[-1], vf[-1]
    k = Wp.shape[1]
    W = np.zeros((2,) + Wp.shape, dtype=Wp.dtype)
    b = np.zeros((2, 1, k), dtype=bp.dtype)
    W[0], b[0, 0] = Wp, bp
    W[1, :, :Wv.shape[1]], b[1, 0, :bv.shape[0]] = Wv, bv
    return (W1, b1), mids, (W, b)


_LINEAR = None
_MKLDNN_MIN = 16  # the narrowest layer side that goes through oneDNN


def torch_linear():
    """F.linear, through oneDNN (MKL-DNN) where this torch has it.  Debian's torch calls
    the reference BLAS (libblas3, BLAS_INFO=generic) for F.linear's matrix products, about
    10x slower than oneDNN's on the learner's 128x64 minibatches: the PPO learner's
    forward and backward passes were 75% of an iteration.  oneDNN's linear has its own
    backward (weights, bias and input); a probe checks it against F.linear once, and any
    difference or error falls back to F.linear.  Layers with a side narrower than 16
    (CartPole's 4 inputs, 2 logits, 1 value) stay on F.linear."""
    global _LINEAR
    if _LINEAR is not None:
        return _LINEAR
    import torch
    import torch.nn.functional as F
    op = getattr(torch._C._nn, "mkldnn_linear", None)
    _LINEAR = F.linear
    if op is None or not torch.backends.mkldnn.is_available():
        return _LINEAR

    def mkldnn(x, w, b):
        return op(x.contiguous().to_mkldnn(), w, b).to_dense()

    def linear(x, w, b):
        # oneDNN where both sides of the layer are wide; the reference BLAS is as fast or
        # faster on the narrow first and last layers (4 -> 64: the same; 64 -> 2: 37 us
        # forward and backward for 128 rows, against oneDNN's 100 us with its layout
        # conversions).
        if (x.dim() != 2 or x.dtype != torch.float32 or w.shape[0] < _MKLDNN_MIN or
                w.shape[1] < _MKLDNN_MIN):
            return F.linear(x, w, b)
        return mkldnn(x, w, b)

    try:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(5, _MKLDNN_MIN, generator=g, requires_grad=True)
        w = torch.randn(_MKLDNN_MIN, _MKLDNN_MIN, generator=g, requires_grad=True)
        b = torch.randn(_MKLDNN_MIN, generator=g, requires_grad=True)
        outs = []
        for f in (F.linear, mkldnn):
            y = torch.tanh(f(x, w, b))
            grads = torch.autograd.grad((y * y).sum(), (x, w, b))
            outs.append((y.detach(),) + tuple(grads))
        if all(torch.allclose(p, q, rtol=1e-4, atol=1e-5) for p, q in zip(*outs)):
            _LINEAR = linear
    except Exception:  # an older or different torch: the plain path
        pass
    return _LINEAR


def make_torch_model(obs_dim, num_outputs, model, with_value=True, with_policy=True):
    """The model in PyTorch: .pi (logits) and .vf (value) MLPs, either left out (None) when
    not wanted (the value learner actor builds the value MLP alone)."""
    import torch
    from torch import nn

    linear = torch_linear()

    class Linear(nn.Linear):
        def forward(self, x):
            return linear(x, self.weight, self.bias)

    def normc(layer, std):
        with torch.no_grad():
            w = torch.randn_like(layer.weight)
            w *= std / w.pow(2).sum(dim=1, keepdim=True).sqrt()
            layer.weight.copy_(w)
            layer.bias.zero_()
        return layer

    act = {"tanh": nn.Tanh, "relu": nn.ReLU}.get(model["fcnet_activation"])

    def mlp(out, out_std):
        mods, last = [], obs_dim
        for h in model["fcnet_hiddens"]:
            mods.append(normc(Linear(last, h), 1.0))
            if act:
                mods.append(act())
            last = h
        mods.append(normc(Linear(last, out), out_std))
        return nn.Sequential(*mods)

    class FCNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.pi = mlp(num_outputs, 0.01) if with_policy else None
            self.vf = mlp(1, 0.01) if with_value else None

        # The learner calls these once per minibatch: each layer's forward() directly,
        # without nn.Module.__call__'s hook checks (about 1.5 us per layer and call).
        def pi_forward(self, obs):
            for m in self.pi:
                obs = m.forward(obs)
            return obs

        def vf_forward(self, obs):
            for m in self.vf:
                obs = m.forward(obs)
            return obs

        def forward(self, obs):
            logits = self.pi_forward(obs)
            v = self.vf_forward(obs).squeeze(-1) if self.vf is not None else None
            return logits, v

        def numpy_weights(self):
            def layers(seq):
                return [(m.weight.detach().numpy().T.copy(), m.bias.detach().numpy().copy())
                        for m in seq if isinstance(m, nn.Linear)]
            out = {}
            if self.pi is not None:
                out["pi"] = layers(self.pi)
            if self.vf is not None:
                out["vf"] = layers(self.vf)
            return out

        def load_numpy_weights(self, weights):
            """numpy_weights()' shape back in: each of "pi", "vf" that weights has."""
            with torch.no_grad():
                for name in ("pi", "vf"):
                    seq = getattr(self, name)
                    if seq is None or name not in weights:
                        continue
                    lin = [m for m in seq if isinstance(m, nn.Linear)]
                    for m, (W, b) in zip(lin, weights[name]):
                        m.weight.copy_(torch.tensor(W.T))  # a copy: W may be read-only
                        m.bias.copy_(torch.tensor(b))

    return FCNet()
