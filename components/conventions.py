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
"""What a storage account holds (see the PURPOSE_* values)."""

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

MEMBER_OF_MARKER = "member-of="
"""In a role assignment's description, ``member-of=<silo>`` marks a person who belongs to
that silo (e.g. its data custodian) and may therefore hold data roles on its storage."""
