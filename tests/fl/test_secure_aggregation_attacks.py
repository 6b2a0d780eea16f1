"""An active orchestrator against the silos' secure-aggregation guard (issue 17): each
attack is played through the silos' real message handler (SecureSilo) with their stores."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from fl_jobs.local.secure_messages import (
    ConsistencyReply,
    ConsistencyRequest,
    KeysReply,
    KeysRequest,
    MaskRequest,
    Refused,
    RevealRequest,
    SecureSilo,
    SharesReply,
    SharesRequest,
)
from fl_jobs.secure_aggregation import (
    FixedPointCodec,
    MaskedSum,
    MaskedUpdate,
    Reveal,
    SecureAggregationSession,
)
from fl_jobs.secure_aggregation.silo_guard import (
    SIGNING_PUBLIC_RECORD,
    SessionGuard,
    SessionPolicy,
    model_digest,
)
from fl_jobs.silo.silo_store import LocalSiloStore

SILOS = ["silo-0", "silo-1", "silo-2", "silo-3"]
GLOBAL = {"w": torch.zeros(3)}
MODEL = model_digest(GLOBAL)


def update(i: int) -> dict[str, torch.Tensor]:
    return {"w": torch.tensor([0.5 + i, -0.25 * i, 1.0 / (i + 1)])}


def silos(
    root: Path,
    names: list[str] = SILOS,
    *,
    round: int = 1,
    models: dict[str, str] | None = None,
    updates: Callable[[int], dict[str, torch.Tensor]] = update,
    run_id: str | None = None,
    min_session: int = 0,
) -> dict[str, SecureSilo]:
    """Silos configured for ``SILOS`` with all four per round (floor 3), trained in
    ``round`` from ``GLOBAL`` (or the model digests in ``models``)."""
    policy = SessionPolicy.for_cohort(
        SILOS, len(SILOS), run_id, codec=FixedPointCodec(), min_session=min_session
    )

    def directory(peer: str) -> bytes | None:  # each silo's key, as it published it
        return LocalSiloStore(root / peer).read(SIGNING_PUBLIC_RECORD)

    out = {}
    for i, name in enumerate(names):
        guard = SessionGuard(name, policy, LocalSiloStore(root / name), directory)
        silo = SecureSilo(name, guard)
        model = (models or {}).get(name, MODEL)
        silo.trained(updates(i), 10 + i, round=round, model=model)
        out[name] = silo
    return out


def play(
    parties: dict[str, SecureSilo], session: SecureAggregationSession
) -> dict[str, torch.Tensor] | dict[str, str]:
    """The orchestrator's side of one attempt: the unmasked mean, or each refusal's reason."""
    members = {name: parties[name] for name in session.silos}
    replies = {n: s.handle(KeysRequest(session)) for n, s in members.items()}
    refused = {n: r.reason for n, r in replies.items() if isinstance(r, Refused)}
    if refused:
        return refused
    public = {n: r.public_keys for n, r in replies.items() if isinstance(r, KeysReply)}
    signed_keys = {n: r.signature for n, r in replies.items() if isinstance(r, KeysReply)}
    shares = {n: s.handle(SharesRequest(public, signed_keys)) for n, s in members.items()}
    assert all(isinstance(r, SharesReply) for r in shares.values())
    inbox = {
        n: tuple(shares[o].bundles[n] for o in members if o != n)  # type: ignore[union-attr]
        for n in members
    }
    masked = {n: s.handle(MaskRequest(inbox[n])) for n, s in members.items()}
    models = {n: m.model_signature for n, m in masked.items() if isinstance(m, MaskedUpdate)}
    total = MaskedSum(session, public, GLOBAL)
    for m in masked.values():
        assert isinstance(m, MaskedUpdate)
        total.add(m)
    split = ConsistencyRequest(total.contributors, total.missing)
    signed = {n: s.handle(split) for n, s in members.items()}
    signatures = {n: r.signature for n, r in signed.items() if isinstance(r, ConsistencyReply)}
    ask = RevealRequest(total.contributors, total.missing, signatures, models)
    reveals = {n: s.handle(ask) for n, s in members.items()}
    refused = {n: r.reason for n, r in reveals.items() if isinstance(r, Refused)}
    if refused:
        return refused
    assert all(isinstance(r, Reveal) for r in reveals.values())
    return total.finish(list(reveals.values()))  # type: ignore[arg-type]


def test_redo_differencing_recovers_nothing_and_is_refused(tmp_path: Path) -> None:
    """Unmask the round over all four, then 'redo' it without silo-3 and subtract: the
    silos refuse to reveal the same updates over another survivor set, also after a
    restart and under another run id."""
    parties = silos(tmp_path)
    full = SecureAggregationSession("run", 1, SILOS)
    assert "w" in play(parties, full)
    assert "w" in play(parties, full.without([]))  # the same survivors again: the same sum
    redo = full.without(["silo-3"], threshold=3)
    refused = play(parties, redo)
    assert refused == {s: "update-already-unmasked" for s in SILOS[:3]}
    restarted = silos(tmp_path, SILOS[:3])  # new processes, same stores, same updates
    other_run = SecureAggregationSession("another-run", 1, SILOS[:3], threshold=3)
    assert play(restarted, other_run) == {s: "update-already-unmasked" for s in SILOS[:3]}


def test_an_unmasked_session_is_not_joined_again(tmp_path: Path) -> None:
    parties = silos(tmp_path)
    session = SecureAggregationSession("run", 1, SILOS)
    assert "w" in play(parties, session)
    again = {n: s.handle(KeysRequest(session)) for n, s in parties.items()}
    assert all(isinstance(r, Refused) and r.reason == "session-replayed" for r in again.values())


def crafted(silos_: list[str], threshold: int) -> SecureAggregationSession:
    """A session object as an orchestrator could pickle it, past the constructor's checks."""
    honest = SecureAggregationSession("run", 1, silos_)
    forged = object.__new__(SecureAggregationSession)
    forged.__dict__.update(honest.__dict__)
    forged.threshold = threshold
    return forged


@pytest.mark.parametrize(
    ("session", "reason"),
    [
        (lambda: crafted(SILOS, 2), "session-forged"),
        (
            lambda: SecureAggregationSession(
                "run", 1, [*SILOS, "silo-x", "silo-y", "silo-z", "silo-w"]
            ),
            "session-unknown-silo",
        ),
        (
            lambda: SecureAggregationSession("run", 1, SILOS[:2]),
            "session-cohort-below-minimum",
        ),
        (
            lambda: SecureAggregationSession("run", 1, SILOS[:3]),
            "session-threshold-below-floor",
        ),
    ],
)
def test_a_crafted_session_is_refused_with_a_code(
    tmp_path: Path, session: Callable[[], SecureAggregationSession], reason: str
) -> None:
    parties = silos(tmp_path)
    built = session()
    replies = [parties[n].handle(KeysRequest(built)) for n in built.silos if n in parties]
    assert replies and all(isinstance(r, Refused) and r.reason == reason for r in replies)


def test_a_split_view_is_detected_by_the_signed_survivor_sets(tmp_path: Path) -> None:
    """Round 3 of Bonawitz et al.: the orchestrator tells silo-0 and silo-1 that silo-3
    dropped, and silo-2 and silo-3 that silo-0 dropped, so as to collect self-mask shares
    from one group and mask-key shares from the other. Each silo signs the set it saw; no
    set gathers ``threshold`` (3) valid signatures, forged ones do not verify, and no silo
    reveals anything."""
    parties = silos(tmp_path)
    session = SecureAggregationSession("run", 1, SILOS)
    keys = {n: s.handle(KeysRequest(session)) for n, s in parties.items()}
    public = {n: r.public_keys for n, r in keys.items()}  # type: ignore[union-attr]
    signed = {n: r.signature for n, r in keys.items()}  # type: ignore[union-attr]
    shares = {n: s.handle(SharesRequest(public, signed)) for n, s in parties.items()}
    for n, s in parties.items():
        inbox = tuple(shares[o].bundles[n] for o in parties if o != n)  # type: ignore[union-attr]
        assert isinstance(s.handle(MaskRequest(inbox)), MaskedUpdate)
    view_a = (("silo-0", "silo-1", "silo-2"), ("silo-3",))
    view_b = (("silo-1", "silo-2", "silo-3"), ("silo-0",))
    shown = {"silo-0": view_a, "silo-1": view_a, "silo-2": view_b, "silo-3": view_b}
    signatures: dict[tuple, dict[str, bytes]] = {view_a: {}, view_b: {}}
    for n, view in shown.items():
        reply = parties[n].handle(ConsistencyRequest(*view))
        assert isinstance(reply, ConsistencyReply)
        signatures[view][n] = reply.signature
    # The orchestrator adds what it has: signatures made on the other view, or garbage.
    for view, other in ((view_a, view_b), (view_b, view_a)):
        forged = {**signatures[other], **signatures[view], "silo-9": b"x" * 64}
        for n in (s for s, v in shown.items() if v == view):
            reply = parties[n].handle(RevealRequest(*view, forged))
            assert isinstance(reply, Refused) and reply.reason == "consistency-check-failed"
    # The honest view, signed by all, still unmasks (the check is not a denial of service).
    honest = SecureAggregationSession("run", 1, SILOS)
    assert "w" in play(silos(tmp_path / "honest"), honest)


def test_a_silo_signs_one_split_per_session(tmp_path: Path) -> None:
    """Asking every silo to sign both views (to gather threshold signatures on each) fails:
    a silo signs one split per session, and leaves a session in which it was asked for two."""
    parties = silos(tmp_path)
    session = SecureAggregationSession("run", 1, SILOS)
    keys = {n: s.handle(KeysRequest(session)) for n, s in parties.items()}
    public = {n: r.public_keys for n, r in keys.items()}  # type: ignore[union-attr]
    signed = {n: r.signature for n, r in keys.items()}  # type: ignore[union-attr]
    shares = {n: s.handle(SharesRequest(public, signed)) for n, s in parties.items()}
    for n, s in parties.items():
        inbox = tuple(shares[o].bundles[n] for o in parties if o != n)  # type: ignore[union-attr]
        s.handle(MaskRequest(inbox))
    view_a = (("silo-0", "silo-1", "silo-2"), ("silo-3",))
    view_b = (("silo-1", "silo-2", "silo-3"), ("silo-0",))
    for silo in ("silo-1", "silo-2"):
        assert isinstance(parties[silo].handle(ConsistencyRequest(*view_a)), ConsistencyReply)
        again = parties[silo].handle(ConsistencyRequest(*view_b))
        assert isinstance(again, Refused) and again.reason == "split-already-signed"
        left = parties[silo].handle(RevealRequest(*view_a))
        assert isinstance(left, Refused)  # the session is closed for this silo


def test_a_substituted_key_is_refused_and_no_mask_is_derived(tmp_path: Path) -> None:
    """A man in the middle: the orchestrator relays its own X25519 keys as silo-1's, with
    silo-1's signature, with one of its own key, or with none. Every other silo refuses
    before agreeing any key (``peer-key-unauthenticated``) and leaves the session; the
    honest relay goes through."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from fl_jobs.secure_aggregation.client import SecureAggregationClient
    from fl_jobs.secure_aggregation.silo_guard import keys_message

    session = SecureAggregationSession("run", 1, SILOS)
    mallory = SecureAggregationClient(session, "silo-1").public_keys  # the orchestrator's
    own_signature = Ed25519PrivateKey.generate().sign(keys_message(session, "silo-1", mallory))

    def keys_of(parties: dict[str, SecureSilo]) -> tuple[dict, dict]:
        replies = {n: s.handle(KeysRequest(session)) for n, s in parties.items()}
        assert all(isinstance(r, KeysReply) for r in replies.values())
        public = {n: r.public_keys for n, r in replies.items()}  # type: ignore[union-attr]
        return public, {n: r.signature for n, r in replies.items()}  # type: ignore[union-attr]

    for case in ("relayed", "own", "none"):
        parties = silos(tmp_path / case)
        public, signed = keys_of(parties)
        forged = {"relayed": signed["silo-1"], "own": own_signature, "none": b""}[case]
        attack = SharesRequest({**public, "silo-1": mallory}, {**signed, "silo-1": forged})
        for name in ("silo-0", "silo-2", "silo-3"):
            reply = parties[name].handle(attack)
            assert isinstance(reply, Refused) and reply.reason == "peer-key-unauthenticated"
            assert parties[name]._client is None  # session left: no mask was derived
    parties = silos(tmp_path / "honest")
    public, signed = keys_of(parties)
    honest = {n: s.handle(SharesRequest(public, signed)) for n, s in parties.items()}
    assert all(isinstance(r, SharesReply) for r in honest.values())


def test_a_session_with_a_chosen_sample_bound_is_refused(tmp_path: Path) -> None:
    """A bound the orchestrator picks per session could probe a silo's count (a refusal would
    say the count is above it); silos join only sessions on the public bound."""
    parties = silos(tmp_path)
    probe = SecureAggregationSession("run", 1, SILOS, max_samples=100)
    assert play(parties, probe) == {s: "session-bound-not-public" for s in SILOS}
    assert "w" in play(parties, SecureAggregationSession("run", 1, SILOS))


def weighted_sum(mean: dict[str, torch.Tensor] | dict[str, str], names: list[str]) -> torch.Tensor:
    """The sample-weighted sum behind an unmasked mean of the silos ``names``."""
    assert "w" in mean, mean
    return mean["w"] * sum(10 + SILOS.index(n) for n in names)  # type: ignore[operator]


def nudged(i: int) -> dict[str, torch.Tensor]:
    """An update trained from a global model perturbed by 1e-6: new bytes, nearly the same."""
    return {"w": update(i)["w"] + 1e-6}


def test_a_redo_from_a_perturbed_global_model_is_refused(tmp_path: Path) -> None:
    """Unmask round 1 over all four, then redo it from a slightly perturbed global model
    (new update digests) without silo-3 and subtract. Against silos that remember only
    updates (fresh stores for the redo), that gives silo-3's weighted update to within 1e-3;
    the silos refuse the redo (``round-already-unmasked``), also as restarted processes."""
    full = SecureAggregationSession("run", 1, SILOS)
    redo = full.without(["silo-3"], threshold=3)
    first = play(silos(tmp_path / "a"), full)
    again = play(silos(tmp_path / "forgetful", SILOS[:3], updates=nudged), redo)
    leaked = weighted_sum(first, SILOS) - weighted_sum(again, SILOS[:3])
    assert torch.allclose(leaked, 13 * update(3)["w"], atol=1e-3)  # the threat is real

    assert "w" in play(silos(tmp_path / "b"), full)
    restarted = silos(tmp_path / "b", SILOS[:3], updates=nudged)
    assert play(restarted, redo) == {s: "round-already-unmasked" for s in SILOS[:3]}
    # The same survivors again, from the perturbed model, give nothing new and still unmask.
    assert "w" in play(silos(tmp_path / "b", updates=nudged), full.without([]))


def test_a_model_chosen_per_silo_gets_no_reveal(tmp_path: Path) -> None:
    """Model inconsistency (Pasquini et al., CCS 2022): silo-0 gets the real global model,
    the others one whose updates the orchestrator knows, so that the sum gives silo-0's
    update. Every silo signs the model it trained from with its masked update, and none
    reveals a sum whose survivors did not all sign its own model."""
    models = {"silo-0": MODEL, **{s: model_digest({"w": torch.ones(3)}) for s in SILOS[1:]}}
    parties = silos(tmp_path, models=models)
    session = SecureAggregationSession("run", 1, SILOS)
    assert play(parties, session) == {s: "model-inconsistent" for s in SILOS}


@pytest.mark.parametrize(
    ("session", "reason"),
    [
        (SecureAggregationSession("run", 2, SILOS), "session-other-round"),
        (SecureAggregationSession("another-run", 1, SILOS), "session-other-run"),
    ],
)
def test_a_session_for_another_round_or_run_is_refused(
    tmp_path: Path, session: SecureAggregationSession, reason: str
) -> None:
    """A silo joins only sessions of the run its own configuration names, for the round it
    has just trained: a session relabelled with another round or run (to escape the
    memory of the one it was unmasked in) is refused."""
    parties = silos(tmp_path, run_id="run")
    assert play(parties, session) == {s: reason for s in SILOS}
    assert "w" in play(parties, SecureAggregationSession("run", 1, SILOS))


@pytest.mark.parametrize(
    "codec",
    [FixedPointCodec(clip=1.0), FixedPointCodec(scale_bits=20), FixedPointCodec(clip=4096.0)],
    ids=["smaller-clip", "fewer-bits", "larger-clip"],
)
def test_a_session_with_an_encoding_the_silo_did_not_configure_is_refused(
    tmp_path: Path, codec: FixedPointCodec
) -> None:
    """The encoding sets the public sample bound and the clip: chosen per session, a refusal
    under it would answer "is your count (or your largest weight) above x?", and a binary
    search over never-unmasked attempts would recover each silo's count. Silos join only
    sessions with their own configuration's encoding."""
    parties = silos(tmp_path)
    probe = SecureAggregationSession("run", 1, SILOS, codec=codec)
    assert play(parties, probe) == {s: "session-codec-not-own" for s in SILOS}
    assert "w" in play(parties, SecureAggregationSession("run", 1, SILOS))


def test_distributed_silo_dp_silos_refuse_a_sum_smaller_than_their_noise_assumes(
    tmp_path: Path,
) -> None:
    """With distributed silo-level DP each silo adds 1/sqrt(k) of the noise: a session of
    fewer than k silos would release a sum with too little noise for the epsilon booked."""
    from fl_jobs.config import JobConfig
    from fl_jobs.secure_aggregation.silo_guard import session_policy

    config = JobConfig(
        example="digits",
        silos=5,
        dp_level="silo",
        dp_silo_clip=1.0,
        target_epsilon=8.0,
        dp_silo_noise="distributed",
        secure_aggregation=True,
    )
    assert session_policy(config).min_session == 5
    parties = silos(tmp_path, min_session=4)
    assert play(parties, SecureAggregationSession("run", 1, SILOS[:3], threshold=3)) == {
        s: "session-cohort-below-minimum" for s in SILOS[:3]
    }
    assert "w" in play(parties, SecureAggregationSession("run", 1, SILOS))
