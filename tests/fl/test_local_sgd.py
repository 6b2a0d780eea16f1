"""The plain SGD step: torch.optim.SGD's math (momentum, weight decay), FedProx's term as the
gradient of mu/2 ||w - w_global||^2, the same bits run to run, and no torch._dynamo import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fl_jobs.core.local_sgd import PlainSGD
from fl_jobs.strategies.fedprox import FedProxHook, ProximalTerm

REPO = Path(__file__).resolve().parents[2]


def model_and_batches(
    seed: int = 0,
) -> tuple[torch.nn.Module, list[tuple[torch.Tensor, torch.Tensor]]]:
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    gen = torch.Generator().manual_seed(seed + 1)
    batches = [
        (torch.randn(5, 8, generator=gen), torch.randint(0, 3, (5,), generator=gen))
        for _ in range(6)
    ]
    return model, batches


def train(
    model: torch.nn.Module, batches: list, optimizer: object, prox: tuple[float, list] | None = None
) -> None:
    for x, y in batches:
        optimizer.zero_grad()  # type: ignore[attr-defined]
        loss = torch.nn.functional.cross_entropy(model(x), y)
        if prox is not None:  # the proximal term through autograd, for the reference
            mu, anchor = prox
            loss = loss + mu / 2 * sum(
                ((p - a) ** 2).sum() for p, a in zip(model.parameters(), anchor, strict=True)
            )
        loss.backward()
        optimizer.step()  # type: ignore[attr-defined]


@pytest.mark.parametrize(("momentum", "weight_decay"), [(0.0, 0.0), (0.9, 0.0), (0.5, 1e-3)])
def test_plain_sgd_matches_torch_optim(momentum: float, weight_decay: float) -> None:
    ours, batches = model_and_batches()
    theirs, _ = model_and_batches()
    train(
        ours,
        batches,
        PlainSGD(ours.parameters(), lr=0.1, momentum=momentum, weight_decay=weight_decay),
    )
    reference = torch.optim.SGD(
        theirs.parameters(), lr=0.1, momentum=momentum, weight_decay=weight_decay
    )
    train(theirs, batches, reference)
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-7)


def test_proximal_term_is_the_gradient_of_mu_half_squared_distance() -> None:
    ours, batches = model_and_batches()
    theirs, _ = model_and_batches()
    anchor = [p.detach().clone() for p in ours.parameters()]
    opt = PlainSGD(ours.parameters(), lr=0.1, momentum=0.9, terms=[ProximalTerm(0.5, anchor)])
    train(ours, batches, opt)
    reference = torch.optim.SGD(theirs.parameters(), lr=0.1, momentum=0.9)
    train(theirs, batches, reference, prox=(0.5, [a.clone() for a in anchor]))
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6)
    plain, _ = model_and_batches()
    train(plain, batches, PlainSGD(plain.parameters(), lr=0.1, momentum=0.9))
    # the term pulls towards the anchor: the proximal model moved less

    def moved(model: torch.nn.Module) -> float:
        pairs = zip(model.parameters(), anchor, strict=True)
        return sum(float(((p.detach() - a) ** 2).sum()) for p, a in pairs)

    assert moved(ours) < moved(plain)


def test_same_seed_same_bits() -> None:
    runs = []
    for _ in range(2):
        model, batches = model_and_batches(seed=4)
        train(
            model, batches, PlainSGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
        )
        runs.append([p.detach().clone() for p in model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*runs, strict=True))


def test_silo_settings_are_the_strategy_hooks_and_unknown_ones_are_refused() -> None:
    hook = FedProxHook()
    assert hook.check_settings({"proximal_mu": 0.25}) == {"proximal_mu": 0.25}
    assert hook.check_settings({}) == {}
    with pytest.raises(ValueError, match="unknown per-round silo setting 'lr'"):
        hook.check_settings({"lr": 1.0})
    with pytest.raises(ValueError, match="must be a number"):
        hook.check_settings({"proximal_mu": True})
    with pytest.raises(ValueError, match="must be finite"):
        hook.check_settings({"proximal_mu": float("nan")})
    with pytest.raises(ValueError, match="proximal_mu must be >= 0"):
        hook.check_settings({"proximal_mu": -1.0})


def test_local_training_never_imports_torch_dynamo() -> None:
    """torch.optim's first optimizer imports torch._dynamo (about a second per process): the
    federation's warm-up and local training without DP must not."""
    code = (
        "import sys, numpy as np\n"
        "from fl_jobs.config import JobConfig\n"
        "from fl_jobs.local.prepare import prepare_job\n"
        "from fl_jobs.local.federation import initial_model, warm_up_torch\n"
        "from fl_jobs.core.silo_data import SiloArrays\n"
        "from fl_jobs.rounds.job_parts import train_params_from_config\n"
        "from fl_jobs.core.training import train_local\n"
        "from fl_jobs.strategies.fedprox import ProximalTerm\n"
        "p = prepare_job(JobConfig(example='digits', silos=2, momentum=0.9))\n"
        "m = initial_model(p); warm_up_torch(m, p)\n"
        "ds = p.dataset; rows = p.partitions[0]\n"
        "data = SiloArrays(X=ds.X[rows], y=ds.y[rows], task='classification')\n"
        "params = train_params_from_config(p.config)\n"
        "anchor = [q.detach().clone() for q in m.parameters()]\n"
        "train_local(m, data, params, seed=1, example=p.example,\n"
        "            terms=[ProximalTerm(0.1, anchor)])\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "False"
