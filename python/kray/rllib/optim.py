# SPDX-License-Identifier: Apache-2.0
"""Adam over flat parameter buffers: torch.optim.Adam's update (no weight decay, no
amsgrad), with each network's parameters, moments and gradients in one flat tensor.

The PPO learner's networks are six small tensors each, and it takes 186 small steps per
iteration (4000 rows, minibatches of 128, 6 passes).  torch's multi-tensor Adam costs
~175 us of CPU per step on those (a Python list comprehension per parameter, ~15
_foreach kernels looping over six tensors each); the same update on one flat tensor per
network is 8 kernels.  The math is the same element by element (the same operations in
the same order: mul_, add_ with alpha, addcmul_, sqrt, div_, add_, addcdiv_), so the
weights are the same bits as torch's Adam gives.

The parameters become views into their network's flat buffer (param.data), so that the
update writes them in place; their gradients are gathered into one flat tensor per step
(one cat).  state_dict() is torch's Adam's (the per-parameter state entries are views of
the flat moments), and load_state_dict() or a state put into .state by hand
(value_learner.load_optimizer_state) is copied into the flat buffers at the next step."""
import math

import torch


class _Segment:
    def __init__(self, params):
        self.params = params
        with torch.no_grad():
            self.flat = torch.cat([p.detach().reshape(-1) for p in params])
        self.grad = torch.zeros_like(self.flat)
        off = 0
        for p in params:
            n = p.numel()
            p.data = self.flat[off:off + n].view_as(p)
            off += n
        self.states = None  # the state dicts this segment made (attach())
        self.step = 0


class FlatAdam(torch.optim.Adam):
    """FlatAdam(segments, lr): segments, lists of parameters (a network's each); a
    segment steps when any of its parameters has a gradient (a missing one counts as
    zero: the networks here get all of theirs together), else it keeps its state, as
    torch's Adam skips parameters without gradients."""

    def __init__(self, segments, lr, betas=(0.9, 0.999), eps=1e-8):
        segments = [s for s in map(list, segments) if s]
        super().__init__([p for s in segments for p in s], lr=lr, betas=betas, eps=eps)
        self.segments = [_Segment(s) for s in segments]

    def _attach(self, seg):
        """The segment's moments as flat tensors, with self.state's entries views of
        them (the state loaded or set since the last step copied in first); called
        when the segment steps (torch's Adam makes a parameter's state at its first
        step too)."""
        st = [self.state.get(p) for p in seg.params]
        if seg.states is not None and all(a is b for a, b in zip(st, seg.states)):
            return
        n = seg.flat.numel()
        seg.m, seg.v = torch.zeros(n), torch.zeros(n)
        steps = set()
        off = 0
        for p, s in zip(seg.params, st):
            k = p.numel()
            if s:
                seg.m[off:off + k].copy_(s["exp_avg"].reshape(-1))
                seg.v[off:off + k].copy_(s["exp_avg_sq"].reshape(-1))
                steps.add(int(float(s["step"])))
            else:
                steps.add(0)
            off += k
        if len(steps) != 1:
            raise ValueError(f"FlatAdam: a network's parameters have Adam states of "
                             f"different step counts {sorted(steps)}")
        seg.step = steps.pop()
        seg.step_t = torch.tensor(float(seg.step))
        seg.states = []
        off = 0
        for p in seg.params:
            k = p.numel()
            s = self.state[p] = {"step": seg.step_t,
                                 "exp_avg": seg.m[off:off + k].view_as(p),
                                 "exp_avg_sq": seg.v[off:off + k].view_as(p)}
            seg.states.append(s)
            off += k

    @torch.no_grad()
    def step(self, closure=None):
        assert closure is None, "FlatAdam takes no closure"
        group = self.param_groups[0]
        beta1, beta2 = group["betas"]
        lr, eps = group["lr"], group["eps"]
        for seg in self.segments:
            grads = [p.grad for p in seg.params]
            if all(g is None for g in grads):
                continue
            self._attach(seg)
            torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1)
                       for g, p in zip(grads, seg.params)], out=seg.grad)
            g = seg.grad
            seg.step += 1
            seg.step_t.fill_(float(seg.step))
            seg.m.mul_(beta1).add_(g, alpha=1 - beta1)
            seg.v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
            t = float(seg.step)  # torch's Adam: the power of step.item()
            step_size = (lr / (1 - beta1 ** t)) * -1
            denom = seg.v.sqrt().div_(math.sqrt(1 - beta2 ** t)).add_(eps)
            seg.flat.addcdiv_(seg.m, denom, value=step_size)

    def zero_grad(self, set_to_none=True):
        for seg in self.segments:
            for p in seg.params:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.zero_()
