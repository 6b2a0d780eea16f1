"""Sandboxes with Kubernetes silos, run under mocks once per session: the hybrid and
confidential sample stacks, with their ``secure:`` placeholders replaced by real secrets (a
generated RSA-4096 agent key, a kubeconfig), as ``pulumi up`` would decrypt them."""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from blueprints.builder import build_sandbox
from blueprints.mock_runtime import MockRun, run_under_mocks
from blueprints.spec import NAMESPACE, SandboxSpec, parse_spec
from components.arc_keys import generate_private_key

REPO = Path(__file__).resolve().parents[2]
SITE_KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: site, cluster: {server: "https://k8s.site.example:6443"}}]
contexts: [{name: site, context: {cluster: site, user: admin}}]
current-context: site
users: [{name: admin, user: {token: site-admin-token-0123456789}}]
"""


@cache
def agent_key() -> str:
    """One RSA-4096 agent key for the session (generating one takes about a second)."""
    return generate_private_key()


def stack_settings(blueprint: str) -> dict[str, Any]:
    """The ``fl-sandbox:`` settings of ``stacks/Pulumi.<blueprint>.yaml``, prefix dropped,
    every ``secure:`` value decrypted to a real secret."""
    document = yaml.safe_load((REPO / "stacks" / f"Pulumi.{blueprint}.yaml").read_text())
    raw = {
        key.removeprefix(f"{NAMESPACE}:"): value
        for key, value in document["config"].items()
        if key.startswith(f"{NAMESPACE}:")
    }
    for silo in raw["silos"]:
        arc = silo.get("arc") or {}
        if "kubeconfig" in arc:
            arc["kubeconfig"] = SITE_KUBECONFIG.replace("site", silo["name"])
        if "privateKey" in arc:
            arc["privateKey"] = agent_key()
    return raw


@cache
def stack_spec(blueprint: str) -> SandboxSpec:
    return parse_spec(stack_settings(blueprint), source=f"stacks/Pulumi.{blueprint}.yaml")


@cache
def stack_run(blueprint: str) -> MockRun:
    """The sample stack of ``blueprint`` with real secrets, under mocks (do not mutate)."""
    spec = stack_spec(blueprint)
    return run_under_mocks(lambda: build_sandbox(spec))


def hybrid_raw() -> dict[str, Any]:
    """A fresh copy of the hybrid sample's settings, to break one at a time."""
    return copy.deepcopy(stack_settings("hybrid"))
