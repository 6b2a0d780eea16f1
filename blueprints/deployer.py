"""Who the ``deployer`` submitter is: a fixed object id, so that a plan does not depend on
who runs it.

``principalId: deployer`` grants the submitter roles to the principal running ``pulumi
up``. A stack deployed by a person and previewed in CI then resolves to two principals, and
every preview shows the deployer's role assignments replaced (a role assignment's principal
cannot change in place: Azure deletes and recreates it,
https://learn.microsoft.com/azure/role-based-access-control/role-assignments#principal).
``fl-sandbox:deployerPrincipalId`` fixes the principal: ``deployer`` stands for that object
id whoever runs Pulumi, and the plan is the same for a person and for CI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pulumi

from blueprints.spec_base import GUID, ConfigError

if TYPE_CHECKING:
    from blueprints.spec import SandboxSpec

KEY = "deployerPrincipalId"
DEPLOYER = "deployer"
FIX = (
    "set fl-sandbox:deployerPrincipalId to the object id of whoever deploys the stack (`az ad "
    "signed-in-user show --query id -o tsv`), so that people and CI resolve 'deployer' alike"
)


def check_deployer_principal(spec: SandboxSpec) -> None:
    """ConfigError when ``deployerPrincipalId`` is set but is not an object id."""
    pid = spec.deployer_principal_id
    if pid is not None and not GUID.match(pid.lower()):
        raise ConfigError(KEY, pid, "not an object id", FIX)


def uses_deployer(spec: SandboxSpec) -> bool:
    """Whether any submitter is the ``deployer`` placeholder."""
    return any(s.principal_id.lower() == DEPLOYER for s in spec.submitters)


def deployer_principal(spec: SandboxSpec, resolved: pulumi.Input[str]) -> pulumi.Input[str]:
    """The object id ``deployer`` stands for: the fixed one, else ``resolved`` (the
    principal running Pulumi, from the Azure client config)."""
    return spec.deployer_principal_id.lower() if spec.deployer_principal_id else resolved


def unstable_deployer(spec: SandboxSpec) -> str | None:
    """The one-line refusal for a stack that CI previews with an unfixed ``deployer``
    (None: stable)."""
    if not uses_deployer(spec) or spec.deployer_principal_id:
        return None
    return (
        "submitter 'deployer' resolves to whoever runs Pulumi, so a CI preview of a stack "
        f"deployed by a person shows its role assignments replaced - {FIX}"
    )
