"""The advertised public keys of a session's silos, checked to cover exactly those silos."""

from __future__ import annotations

from collections.abc import Mapping

from fl_jobs.errors import SecureAggregationError
from fl_jobs.secure_aggregation.keys import PublicKeys
from fl_jobs.secure_aggregation.session import SecureAggregationSession


def check_peer_keys(
    session: SecureAggregationSession, public_keys: Mapping[str, PublicKeys]
) -> dict[str, PublicKeys]:
    """``public_keys`` in session order, or an error naming a missing or unknown silo."""
    missing = [s for s in session.silos if s not in public_keys]
    if missing:
        raise SecureAggregationError(
            f"the public keys of {', '.join(missing)} are missing in {session.label}",
            "wait for every silo's keys, or redo the round without the silos that did not "
            "send them (session.without(...))",
        )
    unknown = sorted(set(public_keys) - set(session.silos))
    if unknown:
        raise SecureAggregationError(
            f"public keys were given for {', '.join(map(str, unknown))}, not in {session.label}",
            "pass the keys of the session's silos only",
        )
    for silo, keys in public_keys.items():
        if not isinstance(keys, PublicKeys):
            raise SecureAggregationError(
                f"the public keys of {silo} are a {type(keys).__name__}, not PublicKeys",
                "relay the PublicKeys each silo advertised",
            )
    masks = [public_keys[s].mask for s in session.silos]
    if len(set(masks)) != len(masks):
        raise SecureAggregationError(
            f"two silos advertised the same mask public key in {session.label}",
            "every silo must make its own keys (SiloKeys.generate())",
        )
    return {s: public_keys[s] for s in session.silos}
