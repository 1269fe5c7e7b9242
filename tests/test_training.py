"""End to end: a small MLP learns, and the README's training step matches torch step for step."""
import numpy as np
import pytest
import torch

import handgrad
from handgrad import nn, optim
from oracle import copy_weights, t


def two_moons(n, noise, rng):
    """Two interleaved half circles in 2-D, labels 0 and 1 (n points each)."""
    theta = rng.uniform(0, np.pi, n)
    upper = np.stack([np.cos(theta), np.sin(theta)], axis=1)
    lower = np.stack([1 - np.cos(theta), 0.5 - np.sin(theta)], axis=1)
    x = np.concatenate([upper, lower]) + rng.normal(0, noise, (2 * n, 2))
    y = np.repeat([0, 1], n)
    return x.astype(np.float32), y


def test_mlp_learns_two_moons():
    rng = np.random.default_rng(0)
    x, y = two_moons(200, 0.1, rng)
    handgrad.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 3), nn.Sigmoid(), nn.Linear(3, 2))
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    epoch_losses = []
    for epoch in range(60):
        order = rng.permutation(len(x))
        losses = []
        for start in range(0, len(x), 20):
            batch = order[start:start + 20]
            loss = criterion(model(x[batch]), y[batch])
            optimizer.zero_grad()
            model.backward(criterion.backward())
            optimizer.step()
            losses.append(loss)
        epoch_losses.append(np.mean(losses))
    assert epoch_losses[-1] < 0.5 * epoch_losses[0]
    assert np.mean(epoch_losses[-5:]) < np.mean(epoch_losses[:5])
    accuracy = (model(x).argmax(axis=1) == y).mean()
    assert accuracy >= 0.95, f"accuracy {accuracy:.3f}, losses {epoch_losses[0]:.3f} -> {epoch_losses[-1]:.3f}"


def test_readme_training_step_matches_torch():
    """The training step exactly as the README writes it, against torch doing the same."""
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    ref_model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 256), torch.nn.ReLU(),
                                    torch.nn.Linear(256, 10))
    copy_weights(model, ref_model)
    ref_criterion = torch.nn.CrossEntropyLoss()
    ref_optimizer = torch.optim.SGD(ref_model.parameters(), lr=0.1, momentum=0.9)

    for step in range(5):
        x = rng.random((32, 1, 28, 28), dtype=np.float32)
        y = rng.integers(0, 10, 32)

        logits = model(x)
        loss = criterion(logits, y)
        optimizer.zero_grad()
        model.backward(criterion.backward())
        optimizer.step()

        ref_loss = ref_criterion(ref_model(t(x)), t(y))
        ref_optimizer.zero_grad()
        ref_loss.backward()
        ref_optimizer.step()

        assert loss == pytest.approx(ref_loss.item(), rel=1e-5), f"step {step}"
        for (name, p), (_, q) in zip(model.named_parameters(), ref_model.named_parameters()):
            np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-5, atol=1e-6, err_msg=f"{name} step {step}")
