"""On-premises data for a silo's jobs: a PersistentVolume (host path or NFS share) and its
claim in the jobs' namespace, read-only.

The Azure ML extension mounts claims labelled ``ml.azure.com/pvc: "true"`` into every job pod
of the namespace, at the path in their ``ml.azure.com/mountpath`` annotation (Azure ML docs,
"Use persistent volume claims in Kubernetes training jobs"; *unverified here: no cluster*).
The volume is bound to this claim only (``claimRef``) and kept when the claim is deleted.
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_kubernetes as k8s

PVC_LABEL = "ml.azure.com/pvc"
MOUNT_ANNOTATION = "ml.azure.com/mountpath"


def data_volume(
    name: str,
    *,
    namespace: pulumi.Input[str],
    host_path: str | None,
    nfs: Mapping[str, str] | None,
    capacity: str,
    mount_path: str,
    provider: k8s.Provider,
    parent: pulumi.Resource,
    depends_on: list[pulumi.Resource],
) -> tuple[k8s.core.v1.PersistentVolume, k8s.core.v1.PersistentVolumeClaim]:
    claim_name = f"{name}-data"
    source: dict[str, object] = (
        {"host_path": {"path": host_path, "type": "Directory"}}
        if host_path
        else {
            "nfs": {
                "server": dict(nfs or {})["server"],
                "path": dict(nfs or {})["path"],
                "read_only": True,
            }
        }
    )
    opts = pulumi.ResourceOptions(parent=parent, provider=provider, depends_on=depends_on)
    volume = k8s.core.v1.PersistentVolume(
        f"{name}-pv",
        metadata={"name": f"{name}-data", "labels": {"fl-sandbox/silo-data": name}},
        spec={
            "capacity": {"storage": capacity},
            "access_modes": ["ReadOnlyMany"],
            "persistent_volume_reclaim_policy": "Retain",
            "storage_class_name": "",
            "claim_ref": {"namespace": namespace, "name": claim_name},
            **source,
        },
        opts=opts,
    )
    claim = k8s.core.v1.PersistentVolumeClaim(
        f"{name}-pvc",
        metadata={
            "name": claim_name,
            "namespace": namespace,
            "labels": {PVC_LABEL: "true"},
            "annotations": {MOUNT_ANNOTATION: mount_path},
        },
        spec={
            "access_modes": ["ReadOnlyMany"],
            "storage_class_name": "",
            "volume_name": volume.metadata["name"],
            "resources": {"requests": {"storage": capacity}},
        },
        opts=pulumi.ResourceOptions(parent=parent, provider=provider, depends_on=[volume]),
    )
    return volume, claim
