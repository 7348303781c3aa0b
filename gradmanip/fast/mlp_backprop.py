"""Hand-written backpropagation through tanh MLPs, batched over objectives.

The PPO hot loop needs, per minibatch, the parameter gradients of several scalar objectives that
share one forward pass (reward surrogate, cost surrogates; the two critics' regressions). For the
small tanh MLPs of on-policy RL, running ``autograd`` once per objective is dominated by the
engine's per-call overhead. Here the forward keeps the layer inputs, and one backward sweep
propagates a stack of output gradients ``[J, B, out]`` (one per objective) with batched matmuls:

    dW_l = delta_l^T h_{l-1},  db_l = sum_b delta_l,  delta_{l-1} = (delta_l W_l) * (1 - h_{l-1}^2)

Supported: ``nn.Sequential`` of ``nn.Linear`` layers separated by ``nn.Tanh`` (TorchRL's ``MLP``
with ``activation_class=nn.Tanh``). Gradients come back in ``module.parameters()`` order, each
shaped ``[J, *param.shape]``. Tests check them against ``torch.autograd``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gradmanip.gaussian import HALF_LOG_2PI


def is_tanh_mlp(module: nn.Module) -> bool:
    """True for ``Sequential(Linear, Tanh, Linear, ..., Tanh, Linear)`` with nothing else."""
    if not isinstance(module, nn.Sequential) or len(module) % 2 == 0:
        return False
    for index, layer in enumerate(module):
        expected = nn.Linear if index % 2 == 0 else nn.Tanh
        if type(layer) is not expected:
            return False
    return all(p.requires_grad for p in module.parameters())


class TanhMLPBackprop:
    """Forward with cached activations and a batched multi-objective backward for a tanh MLP."""

    def __init__(self, mlp: nn.Module) -> None:
        if not is_tanh_mlp(mlp):
            raise TypeError(
                "mlp must be an nn.Sequential of nn.Linear layers separated by nn.Tanh "
                f"(e.g. torchrl MLP(activation_class=nn.Tanh)), got {mlp}"
            )
        self.linears: list[nn.Linear] = [layer for layer in mlp if isinstance(layer, nn.Linear)]

    def __repr__(self) -> str:
        sizes = [self.linears[0].in_features] + [layer.out_features for layer in self.linears]
        return f"TanhMLPBackprop(sizes={sizes})"

    @torch.no_grad()
    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """Output ``[B, out]`` and the inputs of every linear layer (for :meth:`backward`)."""
        inputs = []
        h = x
        last = len(self.linears) - 1
        for index, layer in enumerate(self.linears):
            inputs.append(h)
            h = torch.addmm(layer.bias, h, layer.weight.t())
            if index < last:
                h = h.tanh()
        return h, inputs

    @torch.no_grad()
    def backward(self, inputs: list[Tensor], grad_output: Tensor) -> list[Tensor]:
        """Parameter gradients for a stack of output gradients ``grad_output [J, B, out]``:
        a list in ``parameters()`` order (weight, bias per layer), each ``[J, *shape]``."""
        delta = grad_output
        grads: list[Tensor] = []
        for index in range(len(self.linears) - 1, -1, -1):
            layer, h = self.linears[index], inputs[index]
            grads.append(delta.sum(1))  # bias [J, out]
            grads.append(torch.matmul(delta.transpose(1, 2), h))  # weight [J, out, in]
            if index > 0:
                delta = torch.matmul(delta, layer.weight).mul_(1.0 - h.square())
        grads.reverse()
        return grads


class GaussianPolicyGradients:
    """Per-objective PPO gradients of a Gaussian policy ``Sequential(tanh MLP,
    AddStateIndependentNormalScale(scale_mapping="exp"))`` without autograd.

    :meth:`loss_gradients` returns the gradients of the LOSSES (reward loss
    ``-L_r - entropy_coef * H``, cost losses ``+L_c[k]``) as one ``[1 + K, P]`` tensor in
    ``policy_net.parameters()`` order, plus the loss values. The clipped surrogates' derivative
    with respect to ``log pi`` is ``rho * A`` where the unclipped branch is the active one
    (``min`` for the reward, ``max`` for the cost) and 0 elsewhere.
    """

    def __init__(self, policy_net: nn.Module) -> None:
        if not self.supports(policy_net):
            raise TypeError(
                "policy_net must be Sequential(tanh MLP, AddStateIndependentNormalScale with "
                f"scale_mapping='exp'), got {policy_net}"
            )
        self.mlp = TanhMLPBackprop(policy_net[0])
        self.scale_module = policy_net[1]
        self.params = list(policy_net.parameters())
        self.sizes = [p.numel() for p in self.params]
        self.numel = sum(self.sizes)
        self._buffer: Tensor | None = None
        self._views: list[Tensor] = []
        self._signs: Tensor | None = None

    @staticmethod
    def supports(policy_net: nn.Module) -> bool:
        if not isinstance(policy_net, nn.Sequential) or len(policy_net) != 2:
            return False
        scale = policy_net[1]
        return (
            is_tanh_mlp(policy_net[0])
            and type(scale).__name__ == "AddStateIndependentNormalScale"
            and getattr(scale, "scale_mapping", None) == "exp"
            and isinstance(getattr(scale, "state_independent_scale", None), nn.Parameter)
        )

    def _views_for(self, rows: int) -> tuple[Tensor, list[Tensor]]:
        if self._buffer is None or self._buffer.shape[0] != rows:
            self._buffer = torch.empty(rows, self.numel, dtype=self.params[0].dtype)
            chunks = self._buffer.split(self.sizes, dim=1)
            self._views = [
                chunk.view(rows, *p.shape) for chunk, p in zip(chunks, self.params, strict=True)
            ]
        return self._buffer, self._views

    def _sign(self, rows: int, dtype: torch.dtype) -> Tensor:
        if self._signs is None or self._signs.shape[0] != rows or self._signs.dtype != dtype:
            self._signs = torch.ones(rows, dtype=dtype)
            self._signs[0] = -1.0  # the reward surrogate is maximised: its loss is the negative
        return self._signs

    @torch.no_grad()
    def loss_gradients(
        self,
        obs: Tensor,
        action: Tensor,
        old_log_prob: Tensor,
        advantages: Tensor,
        clip_epsilon: float,
        entropy_coef: float = 0.0,
    ) -> tuple[Tensor, Tensor]:
        """Loss gradients ``[1 + K, P]`` (a reused buffer) and losses ``[1 + K]`` from
        ``advantages [B, 1 + K]`` (the reward advantage, then the K cost advantages)."""
        loc, inputs = self.mlp.forward(obs)
        lower_bound = self.scale_module.scale_lb
        scale = self.scale_module.state_independent_scale.exp()
        active_scale = scale >= lower_bound
        scale = scale.clamp_min(lower_bound)
        log_scale_sum = scale.log().sum()
        z = (action - loc) / scale
        z_sq = z.square()
        log_prob = z_sq.sum(-1).mul_(-0.5).sub_(log_scale_sum + HALF_LOG_2PI * z.shape[-1])
        ratio = (log_prob - old_log_prob).exp_()
        clipped = ratio.clamp(1.0 - clip_epsilon, 1.0 + clip_epsilon)
        # losses: reward -min(rho A, clip A) = max(-rho A, -clip A); costs max(rho A, clip A)
        signed = advantages * self._sign(advantages.shape[1], advantages.dtype)
        unclipped = signed * ratio.unsqueeze(-1)  # [B, J]
        clipped_terms = signed * clipped.unsqueeze(-1)
        losses = torch.maximum(unclipped, clipped_terms).mean(0)
        # d loss / d log pi: rho * (signed A) where the unclipped branch is active, else 0
        dlogp = torch.where(unclipped >= clipped_terms, unclipped, 0.0).t().div_(obs.shape[0])
        grad_loc = dlogp.unsqueeze(-1) * (z / scale)  # [J, B, A]
        grad_log_std = (dlogp @ (z_sq - 1.0)) * active_scale  # [J, A]
        if entropy_coef > 0.0:
            entropy = log_scale_sum + (0.5 + HALF_LOG_2PI) * z.shape[-1]
            losses[0] -= entropy_coef * entropy
            grad_log_std[0] -= entropy_coef * active_scale
        buffer, views = self._views_for(dlogp.shape[0])
        torch._foreach_copy_(views, [*self.mlp.backward(inputs, grad_loc), grad_log_std])
        return buffer, losses


class CriticGradients:
    """Mean-squared-error gradients of value MLPs written into flat ``.grad`` views.

    Every critic's ``.grad`` is a view of one flat buffer (:attr:`flat_grad`, laid out layer by
    layer with the critics side by side), so the joint gradient norm is one reduction and a
    single optimizer step updates all critics. Critics of equal layer sizes (the default
    models) run as one batch: weights stacked ``[C, out, in]``, one ``baddbmm`` per layer
    forward and two ``bmm`` per layer backward, gradients written straight into the buffer.
    """

    def __init__(self, critics: list[nn.Module]) -> None:
        self.backprops = [TanhMLPBackprop(critic) for critic in critics]
        self.params = [p for critic in critics for p in critic.parameters()]
        shapes = {tuple(p.shape for p in critic.parameters()) for critic in critics}
        self.batched = len(shapes) == 1
        self.flat_grad = torch.zeros(
            sum(p.numel() for p in self.params), dtype=self.params[0].dtype
        )
        count = len(critics)
        if self.batched:
            # per layer: the C weights' gradients [C, out, in], then the C biases' [C, out]
            self._weight_grads: list[Tensor] = []
            self._bias_grads: list[Tensor] = []
            offset = 0
            for layer in self.backprops[0].linears:
                out_features, in_features = layer.weight.shape
                size = count * out_features * in_features
                weights = self.flat_grad[offset : offset + size]
                self._weight_grads.append(weights.view(count, out_features, in_features))
                offset += size
                biases = self.flat_grad[offset : offset + count * out_features]
                self._bias_grads.append(biases.view(count, out_features))
                offset += count * out_features
            self.views = [
                grads[index]
                for index in range(count)
                for pair in zip(self._weight_grads, self._bias_grads, strict=True)
                for grads in pair
            ]
        else:
            offset = 0
            self.views = []
            for p in self.params:
                self.views.append(self.flat_grad[offset : offset + p.numel()].view_as(p))
                offset += p.numel()
        self.attach()

    def __repr__(self) -> str:
        return f"CriticGradients(critics={self.backprops}, batched={self.batched})"

    def attach(self) -> None:
        """(Re)point every parameter's ``.grad`` at its view of :attr:`flat_grad`."""
        for p, view in zip(self.params, self.views, strict=True):
            if p.grad is not view:
                p.grad = view

    @staticmethod
    def supports(critics: list[nn.Module]) -> bool:
        return all(is_tanh_mlp(critic) for critic in critics)

    @torch.no_grad()
    def compute(self, obs: Tensor, targets: list[Tensor]) -> Tensor:
        """Write d/dtheta of ``mean((V_i(obs) - target_i)^2)`` for every critic; return the
        losses ``[num_critics]``."""
        self.attach()
        if self.batched:
            return self._compute_batched(obs, targets)
        grads: list[Tensor] = []
        losses = []
        for backprop, target in zip(self.backprops, targets, strict=True):
            value, inputs = backprop.forward(obs)
            error = value - target
            losses.append(error.square().mean())
            grad_out = (2.0 / error.numel()) * error
            grads.extend(g.squeeze(0) for g in backprop.backward(inputs, grad_out.unsqueeze(0)))
        torch._foreach_copy_(self.views, grads)
        return torch.stack(losses)

    def _compute_batched(self, obs: Tensor, targets: list[Tensor]) -> Tensor:
        layers = list(zip(*(backprop.linears for backprop in self.backprops), strict=True))
        count, last = len(self.backprops), len(layers) - 1
        weights = [torch.stack([layer.weight for layer in group]) for group in layers]
        h = obs.expand(count, *obs.shape)
        inputs = []
        for index, (group, weight) in enumerate(zip(layers, weights, strict=True)):
            inputs.append(h)
            bias = torch.stack([layer.bias for layer in group]).unsqueeze(1)
            h = torch.baddbmm(bias, h, weight.transpose(1, 2))
            if index < last:
                h = h.tanh()
        error = h - torch.stack(targets)  # [C, B, 1]
        losses = error.square().mean((1, 2))
        delta = error.mul_(2.0 / (error.shape[1] * error.shape[2]))
        for index in range(last, -1, -1):
            h = inputs[index]
            torch.sum(delta, 1, out=self._bias_grads[index])
            torch.bmm(delta.transpose(1, 2), h, out=self._weight_grads[index])
            if index > 0:
                delta = torch.bmm(delta, weights[index]).mul_(1.0 - h.square())
        return losses
