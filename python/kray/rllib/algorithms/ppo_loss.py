# SPDX-License-Identifier: Apache-2.0
"""PPO's policy loss (RLlib's PPOTorchPolicy terms) as one autograd node, and its
statistics computed once per iteration.

Per row: -min(A * r, A * clip(r, 1 - clip_param, 1 + clip_param)) + kl_coeff * KL(old || new)
- entropy_coeff * entropy, with r = exp(logp(action) - old logp(action)); the loss is
their mean over the minibatch.  Written as autograd would, that is ~25 small operations
forward and as many backward nodes per minibatch, each costing microseconds of dispatch
on a 128x2 minibatch: a quarter of the policy learner's time.

policy_grad() is the minibatch's node: its forward pass computes only the gradient of
the loss with respect to the logits (backward() hands it on), in ~13 operations: the
surrogate's flows where A * r <= A * clip(r) (within the clip range both are equal and
torch's min splits its gradient into halves that add up again; outside it the clipped
side has none), the KL's is -old_p through log_softmax (kl_coeff * -old_p / n is one
column of the whole batch per iteration: `kl_grad_column()`), the entropy's
-p (1 + log p) through it, and log_softmax's backward is done once for all three.  Its
value is 0 (the loss's value is not needed for the update) and it also returns the
minibatch's log-probabilities, from which policy_stats() computes every minibatch's
policy loss, KL, entropy and total loss after the SGD passes, in one batched pass.
tests/python/test_rllib.py checks both against the autograd formulation."""
import torch


class _PolicyGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, act_col, old_logp, kl_grad, onehot, adv, clip_param,
                entropy_coeff):
        lp_all = torch.log_softmax(logits, dim=1)
        p = lp_all.exp()
        ratio = (lp_all.gather(1, act_col).squeeze(1) - old_logp).exp()
        unclipped = adv * ratio
        clipped = adv * ratio.clamp(1 - clip_param, 1 + clip_param)
        inv_n = 1.0 / len(logits)
        # d loss / d log p (per row and action), then log_softmax's backward:
        # g - p * sum(g).
        g = torch.addcmul(kl_grad, onehot, (unclipped * (unclipped <= clipped))[:, None],
                          value=-inv_n)
        if entropy_coeff:
            g += torch.addcmul(p, p, lp_all).mul_(entropy_coeff * inv_n)
        ctx.save_for_backward(torch.addcmul(g, p, g.sum(1, keepdim=True), value=-1))
        ctx.mark_non_differentiable(lp_all)
        return logits.new_zeros(()), lp_all

    @staticmethod
    def backward(ctx, grad_loss, grad_lp):
        (g,) = ctx.saved_tensors
        return (g * grad_loss,) + (None,) * 7


def kl_grad_column(old_p_all, kl_coeff, minibatch_rows):
    """The KL term's gradient with respect to log p, for every row of the batch:
    -kl_coeff * old_p / rows per minibatch (a column the minibatches are cut from)."""
    return old_p_all * (-float(kl_coeff) / minibatch_rows)


def policy_grad(logits, act_col, old_logp, kl_grad, onehot, adv, clip_param,
                entropy_coeff):
    """(zero, log_softmax(logits)): a scalar whose gradient with respect to logits is
    the minibatch's mean policy loss's, and the log-probabilities (for policy_stats).
    act_col: the actions as a [n, 1] column; kl_grad: kl_grad_column()'s rows; onehot:
    the actions one-hot, float."""
    return _PolicyGrad.apply(logits, act_col, old_logp, kl_grad, onehot, adv,
                             float(clip_param), float(entropy_coeff))


@torch.no_grad()
def policy_stats(lp_all, rows, actions, old_logp, old_lp_all, old_p_all, adv, clip_param,
                 kl_coeff, entropy_coeff, minibatches):
    """Per minibatch [policy_loss (-surrogate), kl, entropy, loss] means, as a
    [minibatches, 4] tensor: lp_all, the minibatches' log-probabilities one after the
    other (policy_grad()'s), rows, the batch rows they were computed on (index
    tensor); the other columns are the whole batch's."""
    act = actions[rows]
    ratio = (lp_all.gather(1, act[:, None]).squeeze(1) - old_logp[rows]).exp()
    a = adv[rows]
    surrogate = torch.min(a * ratio, a * ratio.clamp(1 - clip_param, 1 + clip_param))
    kl = (old_p_all[rows] * (old_lp_all[rows] - lp_all)).sum(1)
    entropy = -(lp_all.exp() * lp_all).sum(1)
    loss = -surrogate + kl_coeff * kl - entropy_coeff * entropy
    return torch.stack([-surrogate, kl, entropy, loss]).view(4, minibatches, -1).mean(2).t()
