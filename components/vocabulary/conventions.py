"""Markers every fl-sandbox resource carries, shared by the components and the policies.

Tags are real Azure tags: they make ownership visible in the portal and let the isolation
policies (``policies/``) tell which silo a storage account, compute or identity belongs to,
both over the offline resource graph and at deployment time in the CrossGuard pack.
"""

from __future__ import annotations

TAG_ROLE = "fl-sandbox-role"
"""Which side of the federation a resource belongs to: ``orchestrator`` or ``silo``."""

TAG_SILO = "fl-sandbox-silo"
"""The silo name, on every resource owned by a silo."""

TAG_PURPOSE = "fl-sandbox-purpose"
"""What a resource holds or is for (see the PURPOSE_* values)."""

ROLE_ORCHESTRATOR = "orchestrator"
ROLE_SILO = "silo"

PURPOSE_SILO_DATA = "silo-data"
"""A silo's private training data; only that silo's identity may touch it."""

PURPOSE_MODELS = "models"
"""The orchestrator's model store: one container per silo for updates, one for global models."""

PURPOSE_WORKSPACE = "workspace"
"""The AML workspace's own default storage (code snapshots, logs)."""

GLOBAL_MODELS_CONTAINER = "global"
"""Container of the model store that holds the aggregated global models (silos may read)."""

SIGNING_KEYS_CONTAINER = "signing-keys"
"""Container of the model store where each silo publishes its Ed25519 public key
(``<silo>.pub``) for secure aggregation: every silo reads all of them and writes only its own
blob (by condition); no orchestrator identity writes there."""

MEMBER_OF_MARKER = "member-of="
"""In a role assignment's description, ``member-of=<silo>`` marks a person who belongs to
that silo (e.g. its data custodian) and may therefore hold data roles on its storage."""

SUBMITTER_MARKER = "submitter"
"""In a role assignment's description, ``[submitter]`` marks a grant that lets a person, group
or app submit jobs; the checks then hold that principal to the submitters' rules (it must
never reach silo data, and it must be able to upload code and call the workspace)."""

PURPOSE_IMAGE_BUILD = "image-build"
"""On the compute that builds environment images (it runs as the workspace's identity, which
may push to the registry; no FL step ever runs there)."""

PURPOSE_JOBS = "jobs"
"""On the orchestrator's identity for its jobs (aggregation), which holds only data roles."""

WORKSPACE_LOGS_CONTAINER = "azureml"
"""The workspace storage container where Azure ML writes job logs, outputs and MLflow
artifacts; compute identities may write only there, never to the whole account."""

PURPOSE_AKS_CONTROL_PLANE = "aks-control-plane"
"""On an AKS cluster's control-plane identity (network roles on its subnet, no data)."""
