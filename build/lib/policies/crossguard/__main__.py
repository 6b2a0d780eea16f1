"""Entry point Pulumi runs for ``--policy-pack policies/crossguard``.

Constructing ``PolicyPack`` starts CrossGuard's gRPC server and blocks, so it happens only
here; the policies themselves live in ``pack_policies`` where tests import them.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

from policies.crossguard.pack_policies import PACK_NAME, POLICIES  # noqa: E402

PolicyPack(name=PACK_NAME, enforcement_level=EnforcementLevel.MANDATORY, policies=POLICIES)
