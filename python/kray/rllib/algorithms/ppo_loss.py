# SPDX-License-Identifier: Apache-2.0
"""PPO's policy loss (RLlib's PPOTorchPolicy terms) as one autograd node.

Per row: -min(A * r, A * clip(r, 1 - clip_param, 1 + clip_param)) + kl_coeff * KL(old || new)
- entropy_coeff * entropy, with r = exp(logp(action) - old logp(action)); the loss is
their mean over the minibatch.  Written as autograd would, that is ~25 small operations
forward and as many backward nodes per minibatch, each costing microseconds of dispatch
on a 128x2 minibatch: a quarter of the policy learner's time.  Here the forward pass
computes the loss and, with the same tensors, its gradient with respect to the logits
(log_softmax's backward done once for all three terms); backward() only scales it.

The gradient is autograd's: the surrogate's flows where A * r <= A * clip(r) (within the
clip range both are equal and torch's min splits its gradient into halves that add up
again; outside it the clipped side has no gradient), the KL's is -old_p through
log_softmax, the entropy's -p (1 + log p) through it.  tests/python/test_rllib.py checks
it against the autograd formulation on fixed data."""
import torch


class _PolicyLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, actions, old_logp, old_lp_all, old_p_all, adv, clip_param,
                kl_coeff, entropy_coeff):
        lp_all = torch.log_softmax(logits, dim=1)
        p = lp_all.exp()
        act = actions[:, None]
        ratio = (lp_all.gather(1, act).squeeze(1) - old_logp).exp()
        unclipped = adv * ratio
        clipped = adv * ratio.clamp(1 - clip_param, 1 + clip_param)
        surrogate = torch.min(unclipped, clipped)
        kl = (old_p_all * (old_lp_all - lp_all)).sum(1)
        p_lp = p * lp_all
        entropy = -p_lp.sum(1)
        if entropy_coeff:
            loss = (-surrogate + kl_coeff * kl - entropy_coeff * entropy).mean()
        else:  # the same value: x - 0 * entropy is x
            loss = (kl_coeff * kl - surrogate).mean()
        # d loss / d log p, per row and action (the mean's 1/n last), then log_softmax's
        # backward: g - p * sum(g).
        g = old_p_all * -kl_coeff
        if entropy_coeff:
            g += (p_lp + p) * entropy_coeff
        g.scatter_add_(1, act, (unclipped * (unclipped <= clipped)).neg_()[:, None])
        g /= len(logits)
        ctx.save_for_backward(g.sub_(p * g.sum(1, keepdim=True)))
        stats = torch.stack([surrogate, kl, entropy]).mean(1)
        stats[0].neg_()
        ctx.mark_non_differentiable(stats)
        return loss, stats

    @staticmethod
    def backward(ctx, grad_loss, grad_stats):
        (g,) = ctx.saved_tensors
        return (g * grad_loss,) + (None,) * 8


def policy_loss(logits, actions, old_logp, old_lp_all, old_p_all, adv, clip_param,
                kl_coeff, entropy_coeff):
    """(loss, stats): the minibatch's mean policy loss (differentiable in logits) and
    the tensor [policy_loss (-surrogate), kl, entropy] of its terms' means.  old_lp_all,
    old_p_all: log_softmax of the logits the batch was sampled with, and its exp."""
    return _PolicyLoss.apply(logits, actions, old_logp, old_lp_all, old_p_all, adv,
                             float(clip_param), float(kl_coeff), float(entropy_coeff))
