"""The permissions-table rows of data uploaders (``dataUploaders``, see blueprints/uploaders.py).

A silo's uploader writes that silo's data container and nothing else, as a member of the silo
(so the isolation checks hold it to that silo). A test-set uploader writes the model store's
``global`` container only where a role assignment condition admits the path, so it cannot
overwrite a global model.
"""

from __future__ import annotations

from collections.abc import Iterable

from components.permissions import Grant, PrincipalType, person
from components.vocabulary import builtin_roles as roles
from components.vocabulary.access_targets import Target
from components.vocabulary.conventions import GLOBAL_MODELS_CONTAINER


def uploader_grants(
    target: str,
    principal_id: str,
    principal_type: PrincipalType,
    *,
    global_key: str,
    test_condition: str,
) -> Iterable[Grant]:
    """The one row an uploader of ``target`` (a silo, or ``global_key``) gets."""
    if target == global_key:
        yield Grant(
            person(principal_id),
            roles.BLOB_DATA_CONTRIBUTOR,
            Target("models-container", container=GLOBAL_MODELS_CONTAINER),
            "uploads the test set the first round reads (test-set paths only, by condition)",
            principal_type=principal_type,
            condition=test_condition,
        )
        return
    yield Grant(
        person(principal_id),
        roles.BLOB_DATA_CONTRIBUTOR,
        Target("silo-data-container", silo=target),
        f"uploads silo {target}'s raw data into its data container, nothing else",
        principal_type=principal_type,
        member_of=target,
    )
