"""Generated names satisfy Azure's rules and stay distinct, for short and long inputs alike."""

from __future__ import annotations

import itertools

import pytest

from components.vocabulary import naming

BASES = ["fl", "flsandbox", "a-very-long-base", "x1-y2"]
LABELS = ["a", "silo1", "hospital-a", "hospital-b", "a-very-long-silo-name-xyz", "ws", "models"]
SUFFIXES = ["00000", "zz9zz", "a1b2c"]


@pytest.mark.parametrize(("base", "label", "suffix"), itertools.product(BASES, LABELS, SUFFIXES))
def test_every_generated_name_satisfies_azure_rules(base: str, label: str, suffix: str) -> None:
    names = {
        "storage_account": naming.storage_account(base, label, suffix),
        "key_vault": naming.key_vault(base, suffix),
        "container_registry": naming.container_registry(base, suffix),
        "workspace": naming.workspace(base, suffix),
        "log_analytics": naming.log_analytics(base, suffix),
        "app_insights": naming.app_insights(base, suffix),
        "resource_group": naming.resource_group(base, label, suffix),
        "identity": naming.identity(base, label),
        "compute": naming.compute(label),
        "datastore": naming.datastore("silo", label),
        "blob_container": naming.silo_container(label),
        "network": naming.network("vnet", base, label),
    }
    for kind, name in names.items():
        assert naming.RULES[kind].match(name), (kind, name)
    assert len(names["storage_account"]) <= 24
    assert 3 <= len(names["key_vault"]) <= 24
    assert 2 <= len(names["compute"]) <= 16


def test_names_of_different_silos_stay_different() -> None:
    silos = [f"hospital-{c}{i}" for c in "abcdefgh" for i in range(13)] + [
        "ab",
        "a-b",
        "a-very-long-silo-name-one",
        "a-very-long-silo-name-two",
    ]
    for make in (
        lambda s: naming.storage_account("flsandbox", s, "abcde"),
        naming.compute,
        lambda s: naming.datastore("silo", s),
        naming.silo_container,
    ):
        names = [make(s) for s in silos]
        assert len(set(names)) == len(silos)


def test_names_are_deterministic() -> None:
    assert naming.storage_account("fl", "a-very-long-silo-name-xyz", "abcde") == (
        naming.storage_account("fl", "a-very-long-silo-name-xyz", "abcde")
    )


def test_suffix_makes_globally_unique_names_differ_between_deployments() -> None:
    first, second = "abcde", "fghij"
    for make in (naming.key_vault, naming.container_registry, naming.workspace):
        assert make("fl", first) != make("fl", second)
    assert naming.storage_account("fl", "ws", first) != naming.storage_account("fl", "ws", second)


@pytest.mark.parametrize(
    ("kind", "bad"),
    [
        ("storage_account", "UpperCase123"),
        ("storage_account", "has-dash"),
        ("storage_account", "ab"),
        ("storage_account", "a" * 25),
        ("key_vault", "1starts-with-digit"),
        ("key_vault", "double--dash"),
        ("key_vault", "ends-with-dash-"),
        ("key_vault", "k" * 25),
        ("container_registry", "acr"),
        ("container_registry", "acr-dash"),
        ("compute", "c" * 17),
        ("compute", "1abc"),
        ("compute", "ab-"),
        ("datastore", "has-dash"),
        ("blob_container", "Upper"),
        ("blob_container", "ab"),
        ("blob_container", "a--b"),
    ],
)
def test_rules_reject_names_azure_rejects(kind: str, bad: str) -> None:
    with pytest.raises(naming.NamingError, match=kind):
        naming.check(kind, bad)
