"""Secure aggregation: the orchestrator sums masked updates and learns only the weighted mean
(and the sample counts), never one silo's update. See docs/secure-aggregation.md.

One round attempt, for silos S (order fixed by the session)::

    session = SecureAggregationSession(run_id, round, S, max_samples=...)   # everyone
    client = SecureAggregationClient(session, silo)                        # each silo
    keys[silo] = client.public_keys                                        # -> orchestrator
    bundles = client.share_secrets(keys)          # all keys -> silo; bundles -> orchestrator
    client.receive_shares(bundles_for[silo])                               # relayed
    masked = client.masked_update(weights, n_samples)                      # -> orchestrator
    total = MaskedSum(session, keys, global_weights); total.add(masked)    # orchestrator
    reveal = client.reveal(total.contributors, total.missing)              # each survivor
    new_weights = total.finish(reveals)                                    # orchestrator
"""

from fl_jobs.secure_aggregation.client import SecureAggregationClient
from fl_jobs.secure_aggregation.encoding import FixedPointCodec
from fl_jobs.secure_aggregation.keys import PublicKeys, SiloKeys
from fl_jobs.secure_aggregation.layout import ModelLayout
from fl_jobs.secure_aggregation.masked_sum import MaskedSum
from fl_jobs.secure_aggregation.messages import MaskedUpdate, Reveal, ShareBundle
from fl_jobs.secure_aggregation.session import SecureAggregationSession

__all__ = [
    "FixedPointCodec",
    "MaskedSum",
    "MaskedUpdate",
    "ModelLayout",
    "PublicKeys",
    "Reveal",
    "SecureAggregationClient",
    "SecureAggregationSession",
    "ShareBundle",
    "SiloKeys",
]
