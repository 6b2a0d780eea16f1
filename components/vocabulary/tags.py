"""Tags for every taggable resource: ownership markers first, then the user's own tags.

The markers (``components.vocabulary.conventions``) are how the isolation policies tell which
silo owns a resource, so they are set here, in one place, and user tags can never override them
(the spec refuses user tags in the ``fl-sandbox-`` namespace).
"""

from __future__ import annotations

from collections.abc import Mapping

from components.vocabulary.conventions import (
    ROLE_ORCHESTRATOR,
    ROLE_SILO,
    TAG_PURPOSE,
    TAG_ROLE,
    TAG_SILO,
)


def orchestrator_tags(user: Mapping[str, str]) -> dict[str, str]:
    return {**user, TAG_ROLE: ROLE_ORCHESTRATOR}


def silo_tags(user: Mapping[str, str], silo: str) -> dict[str, str]:
    return {**user, TAG_ROLE: ROLE_SILO, TAG_SILO: silo}


def with_purpose(tags: Mapping[str, str], purpose: str) -> dict[str, str]:
    """Storage accounts also say what they hold (silo data, models, workspace)."""
    return {**tags, TAG_PURPOSE: purpose}
