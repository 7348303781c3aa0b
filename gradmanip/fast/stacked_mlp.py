"""An ensemble of MLPs by batched matrix products: N copies of one network evaluated at once.

TorchRL's losses keep twin critics (and here one cost critic per constraint) as one network
whose parameters are stacked along a leading dimension ``[N, ...]``. For a plain MLP, Linear
layers and parameter-free activations, the N copies on a shared input run as

    h_1 = act(x W_1^T + b_1)            one product for all N (weights [N * out, in])
    h_l = act(b_l + h_{l-1} W_l^T)      one batched product per layer ([N, B, in] x [N, in, out])

instead of N calls of the network, each with its Python and TensorDict overhead. The values
equal the N separate calls up to float rounding (tested); gradients reach the stacked
parameters through the products.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn


def is_plain_mlp(net: nn.Module) -> bool:
    """Whether ``net`` is a sequence of Linear layers (with bias) and parameter-free modules."""
    if not isinstance(net, nn.Sequential) or not any(isinstance(m, nn.Linear) for m in net):
        return False
    for layer in net:
        if isinstance(layer, nn.Linear):
            if layer.bias is None:
                return False
        elif any(True for _ in layer.parameters()) or any(True for _ in layer.buffers()):
            return False
    return True


def stacked_mlp(net: nn.Sequential, params: Mapping[str, Tensor], x: Tensor, prefix: str) -> Tensor:
    """``net`` under each of the N stacked parameter sets on the shared input ``x`` [B, in]:
    [N, B, out]. ``params[f"{prefix}{i}.weight"]`` is layer i's stacked weight [N, out, in] (and
    ``.bias`` [N, out]); ``net`` must satisfy :func:`is_plain_mlp`."""
    h = x
    for index, layer in enumerate(net):
        if not isinstance(layer, nn.Linear):
            h = layer(h)
            continue
        weight, bias = params[f"{prefix}{index}.weight"], params[f"{prefix}{index}.bias"]
        members, width = weight.shape[0], weight.shape[1]
        if h.dim() == 2:  # shared input: one product for every member
            out = torch.addmm(bias.reshape(-1), h, weight.reshape(-1, weight.shape[-1]).T)
            h = out.view(h.shape[0], members, width).transpose(0, 1)
        else:
            h = torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2))
    return h
