"""SiloNetwork's address plan and AML NSG rules."""

from __future__ import annotations

import ipaddress

import pytest

from components.silo_network import AML_INBOUND_RULES, split_address_space


@pytest.mark.parametrize(
    ("cidr", "compute", "endpoints"),
    [
        ("10.1.0.0/16", "10.1.0.0/17", "10.1.128.0/17"),
        ("192.168.4.0/24", "192.168.4.0/25", "192.168.4.128/25"),
    ],
)
def test_vnet_range_splits_into_compute_and_endpoints(
    cidr: str, compute: str, endpoints: str
) -> None:
    assert split_address_space(cidr) == (compute, endpoints)
    halves = [ipaddress.ip_network(x) for x in split_address_space(cidr)]
    assert not halves[0].overlaps(halves[1])


def test_nsg_admits_only_the_aml_service_tags_inbound() -> None:
    assert {r["source_address_prefix"] for r in AML_INBOUND_RULES} == {
        "BatchNodeManagement",
        "AzureMachineLearning",
    }
    assert all(r["direction"] == "Inbound" and r["access"] == "Allow" for r in AML_INBOUND_RULES)
    assert len({r["priority"] for r in AML_INBOUND_RULES}) == len(AML_INBOUND_RULES)
