import numpy as np
import pytest
import torch
from torch import nn

from difffake_ray.train.nrs import confident_real_centres, min_cosine_distance, nrs_weights
from difffake_ray.train.sam import SAM, lr_at_epoch, sam_step


def test_lr_schedule_constant_then_linear_to_zero():
    assert lr_at_epoch(0, 1e-3, 100, 75) == 1e-3
    assert lr_at_epoch(74, 1e-3, 100, 75) == 1e-3
    assert lr_at_epoch(75, 1e-3, 100, 75) == pytest.approx(1e-3)
    assert lr_at_epoch(87, 1e-3, 100, 75) == pytest.approx(1e-3 * (1 - 12 / 25))
    assert lr_at_epoch(99, 1e-3, 100, 75) == pytest.approx(1e-3 / 25)


class Counting(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 1)
        self.bn = nn.BatchNorm1d(4)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.lin(self.bn(x)).squeeze(-1)


def test_sam_two_passes_perturbs_and_reduces_loss():
    torch.manual_seed(0)
    x = torch.randn(64, 4)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).float()
    model = Counting()
    opt = SAM(model.parameters(), torch.optim.SGD, rho=0.05, lr=0.5, momentum=0.9)
    seen_weights = []

    def loss_fn(m):
        seen_weights.append(m.lin.weight.detach().clone())
        return nn.functional.binary_cross_entropy_with_logits(m(x), y), None

    first, _ = sam_step(model, opt, loss_fn)
    assert model.calls == 2  # two forward-backward passes
    assert not torch.equal(seen_weights[0], seen_weights[1])  # second pass at w + e(w)
    d = (seen_weights[1] - seen_weights[0]).norm()
    assert d <= 0.05 + 1e-5  # the ascent step has norm rho (over all parameters)
    losses = [first.item()]
    for _ in range(30):
        losses.append(sam_step(model, opt, loss_fn)[0].item())
    assert losses[-1] < 0.5 * losses[0]


def test_sam_second_pass_leaves_batchnorm_statistics_alone():
    model = Counting()
    opt = SAM(model.parameters(), torch.optim.SGD, rho=0.05, lr=0.1)
    x = torch.randn(32, 4) * 3 + 1
    snapshots = []

    def loss_fn(m):
        out = m(x).sum()
        snapshots.append(m.bn.running_mean.clone())
        return out, None

    sam_step(model, opt, loss_fn)
    after = model.bn.running_mean
    # updated by the first pass, not by the second: the value after the step is the first's
    assert torch.allclose(after, snapshots[1]) and not torch.allclose(snapshots[0], torch.zeros(4))


def test_sam_state_dict_round_trip_keeps_momentum():
    model = Counting()
    opt = SAM(model.parameters(), torch.optim.SGD, rho=0.05, lr=0.1, momentum=0.9)
    sam_step(model, opt, lambda m: (m(torch.randn(8, 4)).pow(2).mean(), None))
    state = opt.state_dict()
    opt2 = SAM(model.parameters(), torch.optim.SGD, rho=0.05, lr=0.1, momentum=0.9)
    opt2.load_state_dict(state)
    bufs = [s["momentum_buffer"] for s in opt2.base_optimizer.state.values()]
    assert bufs and all(b is not None for b in bufs)


def test_nrs_weights_follow_the_formula():
    centres = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    fakes = np.array([[1.0, 0.1], [-1.0, -1.0], [0.6, 0.8]], np.float32)
    d = min_cosine_distance(fakes, centres)
    assert d[0] == pytest.approx(1 - 1 / np.sqrt(1.01), rel=1e-4)  # float32
    w = nrs_weights(fakes, centres, epoch=50, lam=0.5, beta=200)
    t = 50 / 200
    assert w[0] == pytest.approx(d[0] * t + 1 - t, rel=1e-5)  # close to a real centre: down-weighted
    assert w[1] == 1.0  # far from every centre (d > lambda): weight 1
    assert w[2] == pytest.approx(d[2] * t + 1 - t, rel=1e-5)


def test_confident_real_centres_use_the_top_k():
    rng = np.random.default_rng(0)
    feats = np.concatenate([rng.normal(5, 0.1, (50, 3)), rng.normal(-5, 0.1, (50, 3))])
    prob = np.concatenate([np.full(50, 0.99), np.full(50, 0.1)])
    centres = confident_real_centres(feats, prob, top_k=50, n_clusters=2)
    assert centres.shape == (2, 3) and (centres > 4).all()
