"""Sharpness-Aware Minimization (Foret et al., 2020) over a base optimizer, and the two-pass step.

Under DDP the first (ascent) backward runs in ``no_sync()`` so that every replica perturbs its
weights with its own gradient; the second backward is synchronised as usual, so the base step is
taken with the all-reduced gradient at the perturbed point. Batch-norm running statistics are
updated on the first pass only.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterable, Tuple

import torch
from torch import nn


class SAM(torch.optim.Optimizer):
    def __init__(self, params: Iterable, base_optimizer: type = torch.optim.SGD, rho: float = 0.05,
                 adaptive: bool = False, **kwargs):
        if rho < 0:
            raise ValueError(f"SAM rho must be >= 0, got {rho}")
        super().__init__(params, dict(rho=rho, adaptive=adaptive, **kwargs))
        self.base_optimizer = base_optimizer(self.param_groups, **kwargs)
        self.param_groups = self.base_optimizer.param_groups
        self.defaults.update(self.base_optimizer.defaults)

    @torch.no_grad()
    def _grad_norm(self) -> torch.Tensor:
        norms = [((torch.abs(p) if g["adaptive"] else 1.0) * p.grad).norm(p=2)
                 for g in self.param_groups for p in g["params"] if p.grad is not None]
        if not norms:
            return torch.tensor(0.0)
        return torch.norm(torch.stack([n.to(norms[0].device) for n in norms]), p=2)

    @torch.no_grad()
    def first_step(self, zero_grad: bool = False) -> None:
        """Move to the (approximate) worst point within rho: w + rho * g / ||g||."""
        norm = self._grad_norm()
        for g in self.param_groups:
            scale = g["rho"] / (norm + 1e-12)
            for p in g["params"]:
                if p.grad is None:
                    continue
                e_w = (torch.pow(p, 2) if g["adaptive"] else 1.0) * p.grad * scale.to(p)
                p.add_(e_w)
                self.state[p]["e_w"] = e_w
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def second_step(self, zero_grad: bool = False) -> None:
        """Back to w, then the base optimizer's step with the gradient taken at w + e_w."""
        for g in self.param_groups:
            for p in g["params"]:
                if "e_w" in self.state[p]:
                    p.sub_(self.state[p].pop("e_w"))
        self.base_optimizer.step()
        if zero_grad:
            self.zero_grad()

    def step(self, closure=None):  # pragma: no cover - use sam_step
        raise RuntimeError("SAM needs two passes: use difffake_ray.train.sam.sam_step")

    def state_dict(self):
        # the base optimizer's momentum buffers are what a resume needs
        return {"base": self.base_optimizer.state_dict()}

    def load_state_dict(self, state):
        self.base_optimizer.load_state_dict(state["base"])
        self.param_groups = self.base_optimizer.param_groups


def _set_bn_momentum(model: nn.Module, keep: bool) -> None:
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            if keep:
                if hasattr(m, "_sam_momentum"):
                    m.momentum = m._sam_momentum
                    del m._sam_momentum
            else:
                m._sam_momentum = m.momentum
                m.momentum = 0.0


def sam_step(model: nn.Module, optimizer: SAM, loss_fn: Callable[[nn.Module], Tuple[torch.Tensor, object]]):
    """One SAM update. ``loss_fn(model) -> (loss, aux)`` runs a forward pass and returns the loss.

    Returns ``(loss of the first pass, aux of the first pass)``.
    """
    no_sync = getattr(model, "no_sync", None)
    ctx = no_sync() if callable(no_sync) else contextlib.nullcontext()
    with ctx:
        loss, aux = loss_fn(model)
        loss.backward()
    optimizer.first_step(zero_grad=True)
    _set_bn_momentum(model, keep=False)
    try:
        loss2, _ = loss_fn(model)
        loss2.backward()
    finally:
        _set_bn_momentum(model, keep=True)
    optimizer.second_step(zero_grad=True)
    return loss.detach(), aux


def lr_at_epoch(epoch: int, base_lr: float, epochs: int, decay_start: int) -> float:
    """Constant ``base_lr``, then linear decay to 0 from ``decay_start`` to the last epoch."""
    if epoch < decay_start or epochs <= decay_start:
        return base_lr
    return base_lr * max(0.0, 1.0 - (epoch - decay_start) / float(epochs - decay_start))
