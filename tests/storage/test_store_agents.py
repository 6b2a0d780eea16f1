"""Agent processes over Azurite: a federation through the model store and its faults.

Every agent is a real ``fl-sandbox agent`` process authenticating with
``DefaultAzureCredential`` (a managed-identity endpoint on loopback) over HTTPS.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from tests.azurite import AzuriteServer
from tests.storage.agents import Federation, final_weights, run_local
from tests.storage.identity_endpoint import IdentityEndpoint, identity_endpoint  # noqa: F401

SILOS = ["silo-0", "silo-1", "silo-2"]


@pytest.fixture
def federation(
    tmp_path: Path,
    azurite: AzuriteServer,
    identity_endpoint: IdentityEndpoint,  # noqa: F811
) -> Iterator[Federation]:
    fed = Federation(
        tmp_path, azurite, identity_endpoint, SILOS, {"rounds": 3, "seed": 7, "round_timeout": 60}
    )
    try:
        yield fed
    finally:
        fed.stop_all()


def test_fedavg_over_the_store_equals_the_local_engine(federation: Federation) -> None:
    orchestrator = federation.orchestrator()
    silos = [federation.silo(s) for s in SILOS]
    assert orchestrator.wait(timeout=300) == 0, federation.logs()
    for proc in silos:
        assert proc.wait(timeout=60) == 0, federation.logs()
    store_weights = final_weights(federation.root / "orchestrator")
    local = run_local(federation.root, federation.job_file)
    local_weights = final_weights(local)
    assert store_weights.keys() == local_weights.keys()
    for key in local_weights:
        assert torch.equal(store_weights[key], local_weights[key]), key
    head = federation.head()
    assert head is not None and head["state"] == "finished" and head["complete"] == 3
    costs = (federation.root / "orchestrator" / "store_cost.jsonl").read_text().splitlines()
    assert len(costs) == 3
