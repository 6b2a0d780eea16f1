"""What every silo kind shares: its descriptor (``SiloKind``) and the base of its spec model.

A kind is one module in this package holding its spec model and one ``SiloKind`` that joins
the model to its component (``components/silos/``) and answers what the builder, the
permissions table and the checks ask of a kind. Code outside the kind's module asks these
answers, never the kind's name, so a new kind changes no other code.
"""

from __future__ import annotations

import re
import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from blueprints.spec_base import ConfigError, SpecModel, check_region
from components.silos.base import SiloComponent
from components.silos.kubernetes_silo import KubernetesSilo
from components.vocabulary.posture import NetworkPosture

DEFAULT_SKU = "Standard_DS3_v2"
_STORAGE_ID = re.compile(
    r"^/subscriptions/[0-9a-fA-F-]{36}/resourceGroups/[-\w.()]{1,90}/providers/"
    r"Microsoft\.Storage/storageAccounts/[a-z0-9]{3,24}$",
    re.IGNORECASE,
)


class ExistingStorage(SpecModel):
    """A storage account the silo already has (any resource group or subscription)."""

    account_id: str = Field(description="the account's ARM id")
    container: str = Field(default="data", description="the blob container holding the data")

    @property
    def account_name(self) -> str:
        return self.account_id.rstrip("/").rsplit("/", 1)[-1]

    def check(self, key: str) -> None:
        if not _STORAGE_ID.match(self.account_id):
            raise ConfigError(
                f"{key}.accountId",
                self.account_id,
                "not a storage account id",
                "give the full id, /subscriptions/<id>/resourceGroups/<group>/providers/"
                "Microsoft.Storage/storageAccounts/<name> (`az storage account show -n <name> "
                "--query id -o tsv`)",
            )
        if not re.match(r"^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$", self.container):
            raise ConfigError(
                f"{key}.container",
                self.container,
                "not a blob container name",
                "use 3-63 lowercase letters, digits and single '-'",
            )


class SiloSpecBase(SpecModel):
    """What every kind's settings have. A kind's model adds ``kind: Literal["<name>"]``, its
    own settings and ``check``; a kind that runs in a VNet of the sandbox has an
    ``address_space`` setting (assigned when unset)."""

    if TYPE_CHECKING:  # each kind's model declares it (a Literal), after the shared fields
        kind: str
    name: str
    region: str
    storage: ExistingStorage | None = Field(
        default=None, description="an existing storage account instead of a new one"
    )

    #: This model's kind, set when its :class:`SiloKind` is declared.
    kind_descriptor: ClassVar[SiloKind]

    @property
    def silo_kind(self) -> SiloKind:
        """This silo's kind: the answers the builder and the checks ask for."""
        return type(self).kind_descriptor

    @property
    def network_range(self) -> str | None:
        """The silo VNet's CIDR, for kinds that run in one (None otherwise, or not assigned)."""
        value = getattr(self, "address_space", None)
        return str(value) if value is not None else None

    @property
    def egress_ranges(self) -> list[str]:
        """Public addresses the silo's compute reaches Azure from (on-premises kinds)."""
        return []

    def on_premises_output(self) -> dict[str, Any] | None:
        """What the ``on_premises`` stack output says of this silo (on-premises kinds)."""
        return None

    def check_common(self, key: str) -> None:
        check_region(f"{key}.region", self.region)
        if self.storage is not None:
            self.storage.check(f"{key}.storage")

    def check(self, key: str, blueprint: str, posture: NetworkPosture, confidential: bool) -> None:
        """What only this kind knows, for the silo at ``key`` (``silos[i]``)."""
        self.check_common(key)


@dataclass(frozen=True)
class SiloKind:
    """One silo kind: the ``kind`` value a stack file gives, the model its settings validate
    into, the component that declares it, and the answers the rest of the code asks a kind
    for instead of testing its name."""

    name: str
    spec: type[SiloSpecBase]
    component: type[SiloComponent]
    summary: str
    managed_cluster: bool = False
    """An AKS cluster this stack creates in the silo's VNet: its control plane's rows in the
    permissions table, and Azure's rule that it stays in the region of a private workspace."""
    on_premises: bool = False
    """The site's own cluster, outside Azure: its storage admits only listed addresses, its
    attach needs the Relay grant, and the ``on_premises`` output lists it."""

    @property
    def in_vnet(self) -> bool:
        """Runs in a VNet of the sandbox (peered with the hub, given an address space); the
        component decides, as it is the one that declares the VNet."""
        return self.component.in_vnet

    @property
    def kubernetes(self) -> bool:
        """Jobs run on a Kubernetes cluster attached through the Azure ML extension (its
        attach roles in the permissions table)."""
        return issubclass(self.component, KubernetesSilo)

    def __post_init__(self) -> None:
        """A kind whose parts disagree fails at import, not half-way through a deployment."""
        field = self.spec.model_fields.get("kind")
        if field is None or typing.get_args(field.annotation) != (self.name,):
            raise TypeError(
                f'silo kind {self.name!r}: {self.spec.__name__}.kind must be Literal["{self.name}"]'
            )
        if self.in_vnet != ("address_space" in self.spec.model_fields):
            raise TypeError(
                f"silo kind {self.name!r}: {self.spec.__name__} needs an address_space setting "
                f"exactly when {self.component.__name__}.in_vnet is true"
            )
        self.spec.kind_descriptor = self
