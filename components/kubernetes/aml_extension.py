"""The Azure ML extension on a Kubernetes cluster (Arc-connected or AKS).

Setting values are strings, as the extension reads them (``enableTraining: "True"``). Node
selectors pin the extension's components to the pool FL jobs run on. The extension installs
the ``InstanceType`` custom resource definition, so instance types are created after it. It
takes 10-15 minutes to install. Sources: Azure ML docs, "Deploy Azure Machine Learning
extension on AKS or Arc Kubernetes cluster" (configuration settings).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import pulumi
from pulumi_azure_native import kubernetesconfiguration

EXTENSION_TYPE = "Microsoft.AzureML.Kubernetes"
RELEASE_NAMESPACE = "azureml"
ClusterRp = Literal["Microsoft.Kubernetes", "Microsoft.ContainerService"]
CLUSTER_TYPES: dict[str, str] = {
    "Microsoft.Kubernetes": "connectedClusters",
    "Microsoft.ContainerService": "managedClusters",
}


def extension_settings(
    *, gpu: bool, node_selector: Mapping[str, str], install_prom_op: bool = True
) -> dict[str, str]:
    """The configuration settings for training-only use (no inference router).

    ``installPromOp`` stays at the documented default (true) unless the silo says its cluster
    already runs the Prometheus operator ("Set to False to reuse the existing prometheus
    operator", Microsoft Learn, "Deploy Azure Machine Learning extension": a new cluster has
    none, and the extension's metrics need one)."""
    settings = {
        "enableTraining": "True",
        "enableInference": "False",
        "allowInsecureConnections": "False",
        "installNvidiaDevicePlugin": "True" if gpu else "False",
        "installVolcano": "True",
        "installPromOp": "True" if install_prom_op else "False",
        "installDcgmExporter": "False",
    }
    for key, value in node_selector.items():
        settings[f"nodeSelector.{key}"] = value
    return settings


def aml_extension(
    resource_name: str,
    *,
    cluster_name: pulumi.Input[str],
    cluster_rp: ClusterRp,
    resource_group_name: pulumi.Input[str],
    gpu: bool,
    node_selector: Mapping[str, str],
    version: str | None,
    parent: pulumi.Resource,
    depends_on: Sequence[pulumi.Resource] = (),
    install_prom_op: bool = True,
) -> kubernetesconfiguration.Extension:
    """The extension; a pinned ``version`` turns minor-version auto-upgrade off (no drift)."""
    return kubernetesconfiguration.Extension(
        resource_name,
        cluster_name=cluster_name,
        cluster_rp=cluster_rp,
        cluster_resource_name=CLUSTER_TYPES[cluster_rp],
        resource_group_name=resource_group_name,
        extension_name="azureml",
        extension_type=EXTENSION_TYPE,
        configuration_settings=extension_settings(
            gpu=gpu, node_selector=node_selector, install_prom_op=install_prom_op
        ),
        identity={"type": "SystemAssigned"},
        scope={"cluster": {"release_namespace": RELEASE_NAMESPACE}},
        release_train="stable",
        auto_upgrade_minor_version=version is None,
        version=version,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on)),
    )
