"""A small fully connected autoencoder for the ablation; score = -reconstruction error."""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from .models import ANOMALY_MODELS, AnomalyModel


@ANOMALY_MODELS.register("autoencoder")
class AutoencoderAnomalyModel(AnomalyModel):
    score_meaning = "higher = more likely real (minus the reconstruction error)"

    def __init__(self, hidden: int = 256, bottleneck: int = 64, epochs: int = 50, lr: float = 1e-3, seed: int = 0):
        self.hidden, self.bottleneck, self.epochs, self.lr, self.seed = hidden, bottleneck, epochs, lr, seed

    def _net(self, d: int):
        import torch.nn as nn

        return nn.Sequential(nn.Linear(d, self.hidden), nn.ReLU(), nn.Linear(self.hidden, self.bottleneck),
                             nn.ReLU(), nn.Linear(self.bottleneck, self.hidden), nn.ReLU(), nn.Linear(self.hidden, d))

    def fit(self, X: np.ndarray, groups: Optional[np.ndarray] = None) -> "AutoencoderAnomalyModel":
        import torch

        torch.manual_seed(self.seed)
        x = torch.as_tensor(np.asarray(X, np.float32))
        self.net = self._net(x.shape[1])
        opt = torch.optim.Adam(self.net.parameters(), lr=self.lr)
        for _ in range(self.epochs):
            for batch in torch.split(x[torch.randperm(len(x))], 256):
                opt.zero_grad()
                loss = ((self.net(batch) - batch) ** 2).mean()
                loss.backward()
                opt.step()
        return self

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            x = torch.as_tensor(np.asarray(X, np.float32))
            return -((self.net(x) - x) ** 2).mean(dim=1).double().numpy()

    def to_arrays(self) -> Dict[str, np.ndarray]:
        return {k: v.detach().numpy() for k, v in self.net.state_dict().items()}

    @classmethod
    def from_arrays(cls, arrays, params) -> "AutoencoderAnomalyModel":
        import torch

        m = cls(**params)
        d = arrays["0.weight"].shape[1]
        m.net = m._net(d)
        m.net.load_state_dict({k: torch.as_tensor(v) for k, v in arrays.items()})
        return m
