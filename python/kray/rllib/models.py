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
    """The model's forward pass in numpy: weights as get_weights() gives them."""

    def __init__(self, weights, act, share):
        self.pi = weights["pi"]
        self.vf = weights.get("vf")
        self.act = act
        self.share = share

    def logits_values(self, obs):
        if self.share:
            h = obs
            for W, b in self.pi[:-2]:
                h = _act_np(self.act, h @ W + b)
            logits = h @ self.pi[-2][0] + self.pi[-2][1]
            values = (h @ self.pi[-1][0] + self.pi[-1][1])[:, 0]
            return logits, values
        logits = mlp_forward(self.pi, obs, self.act)
        values = mlp_forward(self.vf, obs, self.act)[:, 0] if self.vf else None
        return logits, values


def make_torch_model(obs_dim, num_outputs, model, with_value=True):
    import torch
    from torch import nn

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
            mods.append(normc(nn.Linear(last, h), 1.0))
            if act:
                mods.append(act())
            last = h
        mods.append(normc(nn.Linear(last, out), out_std))
        return nn.Sequential(*mods)

    class FCNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.pi = mlp(num_outputs, 0.01)
            self.vf = mlp(1, 0.01) if with_value else None

        def forward(self, obs):
            logits = self.pi(obs)
            v = self.vf(obs).squeeze(-1) if self.vf is not None else None
            return logits, v

        def numpy_weights(self):
            def layers(seq):
                return [(m.weight.detach().numpy().T.copy(), m.bias.detach().numpy().copy())
                        for m in seq if isinstance(m, nn.Linear)]
            out = {"pi": layers(self.pi)}
            if self.vf is not None:
                out["vf"] = layers(self.vf)
            return out

    return FCNet()
