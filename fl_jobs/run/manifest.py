"""The federation manifest: the one seam between provisioned infrastructure and FL jobs.

The Pulumi program exports it as the ``federation`` stack output; the job CLI reads it from
``pulumi stack output --json`` (or a file); the local runner builds the same shape with local
folders. Keep this module dependency-light (pydantic only): both sides import it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

MANIFEST_VERSION: Final = 1

SiloKind = Literal["internal", "external", "local"]
ComputeType = Literal["amlcompute", "kubernetes"]

_SILO_NAME = re.compile(r"^[a-z][a-z0-9-]{0,22}[a-z0-9]$|^[a-z]$")
# A storage account's blob endpoint (https://<account>.blob.<cloud suffix>): the account name
# is 3-24 lowercase letters and digits; no path, query or SAS, since agents use their identity.
_BLOB_ENDPOINT = re.compile(r"^https://[a-z0-9]{3,24}\.blob\.[a-z0-9.-]+[a-z0-9]/?$")


class ManifestError(ValueError):
    """A manifest that cannot be used, with a message that says what to fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WorkspaceRef(_Strict):
    """Coordinates of the orchestrator's Azure ML workspace."""

    subscription_id: str
    resource_group: str
    name: str
    region: str


class OrchestratorRef(_Strict):
    """Where aggregation runs and where model artifacts are stored."""

    compute: str = Field(description="AML compute name of the orchestrator cluster")
    datastore: str = Field(description="AML datastore of the orchestrator model store")
    identity_client_id: str | None = None
    compute_type: ComputeType = "amlcompute"
    instance_type: str | None = Field(
        default=None, description="Kubernetes instance type (an attached cluster)"
    )
    model_store_url: str | None = Field(
        default=None,
        description="blob endpoint of the model store (https://<account>.blob.core.windows.net),"
        " which the model-store agents talk to",
    )

    @model_validator(mode="after")
    def _check(self) -> OrchestratorRef:
        if self.compute_type == "kubernetes" and not self.instance_type:
            raise ValueError("a Kubernetes orchestrator compute needs its instance_type")
        if self.model_store_url is not None and not _BLOB_ENDPOINT.match(self.model_store_url):
            raise ValueError(
                f"model_store_url {self.model_store_url!r} is not a storage account blob "
                "endpoint (https://<account>.blob.core.windows.net, no path, query or SAS)"
            )
        return self


class SiloRef(_Strict):
    """One silo: the only compute allowed to touch the silo's datastore."""

    name: str
    region: str
    kind: SiloKind = "internal"
    compute: str = Field(description="AML compute (cluster or attached Kubernetes) of the silo")
    datastore: str = Field(description="AML datastore (or local folder for kind=local)")
    update_datastore: str | None = Field(
        default=None,
        description="AML datastore of the silo's own container in the model store, the only "
        "place its model updates may be written (required for cloud silos)",
    )
    identity_client_id: str | None = None
    compute_type: ComputeType = Field(
        default="amlcompute",
        description="amlcompute (an Azure ML cluster) or kubernetes (an attached AKS or Arc "
        "cluster, which runs jobs on instance types)",
    )
    instance_type: str | None = Field(
        default=None, description="Kubernetes instance type the silo's steps run on"
    )
    data_mount: str | None = Field(
        default=None,
        description="path where the silo's on-premises data volume is mounted in its job pods",
    )
    gpus: int = Field(
        default=0,
        ge=0,
        description="NVIDIA GPUs a job step of the silo gets (its VM size, or its instance "
        "type on Kubernetes); above 0 the silo's steps run in the CUDA environment",
    )

    @model_validator(mode="after")
    def _check(self) -> SiloRef:
        if not _SILO_NAME.match(self.name):
            raise ValueError(
                f"silo name {self.name!r} must be 1-24 lowercase letters, digits or '-', "
                "starting with a letter and not ending with '-'"
            )
        if self.compute_type == "kubernetes" and not self.instance_type:
            raise ValueError(
                f"silo {self.name!r} runs on a Kubernetes compute and needs its instance_type"
            )
        if self.kind != "local" and not self.update_datastore:
            raise ValueError(
                f"silo {self.name!r} ({self.kind}) needs update_datastore, the datastore of its "
                "own container in the model store"
            )
        return self


class FederationManifest(_Strict):
    """Versioned description of a federation, produced by infra, consumed by jobs."""

    version: Literal[1] = MANIFEST_VERSION
    blueprint: str
    workspace: WorkspaceRef | None = Field(
        default=None, description="None for a local federation (no cloud)"
    )
    orchestrator: OrchestratorRef
    silos: list[SiloRef] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_silos(self) -> FederationManifest:
        seen: set[str] = set()
        for silo in self.silos:
            if silo.name in seen:
                raise ValueError(
                    f"silo name {silo.name!r} appears twice; silo names must be unique"
                )
            seen.add(silo.name)
        if self.workspace is None and any(s.kind != "local" for s in self.silos):
            raise ValueError("a manifest with cloud silos needs a 'workspace' section")
        return self

    def silo(self, name: str) -> SiloRef:
        for silo in self.silos:
            if silo.name == name:
                return silo
        raise ManifestError(f"no silo named {name!r}; known: {[s.name for s in self.silos]}")

    @classmethod
    def parse(cls, data: Any, *, source: str = "manifest") -> FederationManifest:
        """Validate a mapping; accepts a bare manifest or ``{"federation": {...}}``
        (the whole ``pulumi stack output --json``)."""
        if isinstance(data, dict) and "federation" in data and "silos" not in data:
            data = data["federation"]
        if not isinstance(data, dict):
            raise ManifestError(f"{source}: expected a JSON object, got {type(data).__name__}")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
                for err in exc.errors()
            )
            raise ManifestError(
                f"{source} is not a valid federation manifest (version {MANIFEST_VERSION}): "
                f"{problems}. Produce it with `pulumi stack output --json federation`."
            ) from None

    @classmethod
    def load(cls, path: str | Path) -> FederationManifest:
        path = Path(path)
        if not path.is_file():
            raise ManifestError(
                f"manifest file {path} does not exist; write it with "
                f"`pulumi stack output --json federation > {path}`"
            )
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ManifestError(f"{path} is not valid JSON: {exc}") from None
        return cls.parse(data, source=str(path))

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)
