"""The silo guarantee, checked on a pipeline before it is submitted.

Cross-silo FL on Azure promises that only compute inside silo S touches S's storage and that
only model artifacts and metrics leave a silo. Azure enforces the first with RBAC at run time;
this check refuses a miswired pipeline before anything is sent, naming the step and the
datastore, so a mistake never turns into a denied (or, with loose RBAC, a leaking) job.

Rules, per step (``describe_steps`` resolves every data port to the datastore behind it):
- the step runs on an explicit compute listed in the manifest;
- every data input and output resolves to an ``azureml://datastores/...`` URI;
- no step outside silo S reads or writes S's data datastore;
- silo S's update datastore is written only by S's steps and read only by S and the
  orchestrator (no silo sees another silo's update);
- a silo step reads from the global model store only global models (``<job>/global/...``)
  and never writes there;
- nothing inside a silo writes to any other datastore: only its update leaves the silo;
- every step runs with ``identity: managed`` (Azure's rule 13): the default (``AmlToken``)
  leaves the data identity to the service, and ``user_identity`` would use the submitter's
  own token, which must never reach a silo's data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from fl_jobs.aml.layout import is_global_model_path, parse_datastore_uri
from fl_jobs.aml.model_store import ModelStore, model_store_for
from fl_jobs.aml.steps_io import DataPort, StepIO, describe_steps
from fl_jobs.run.manifest import FederationManifest


@dataclass(frozen=True)
class DataFlowViolation:
    """One broken silo rule: which step, which datastore (when one is involved), and why."""

    step: str
    datastore: str | None
    message: str

    def __str__(self) -> str:
        where = f" (datastore {self.datastore!r})" if self.datastore else ""
        return f"step {self.step!r}{where}: {self.message}"


class DataFlowError(RuntimeError):
    """Raised instead of submitting a pipeline that breaks the silo rules."""

    def __init__(self, violations: list[DataFlowViolation]) -> None:
        self.violations = violations
        lines = "\n".join(f"  - {v}" for v in violations)
        super().__init__(
            f"refusing to submit: {len(violations)} violation(s) of the job checks (silo "
            "data rules, step environments):\n"
            f"{lines}"
        )


Place = tuple[Literal["orchestrator", "silo"], str]


def _kubernetes_computes(manifest: FederationManifest) -> set[str]:
    """Attached Kubernetes computes (AKS or Arc), where a job's identity takes no client id."""
    found = {s.compute for s in manifest.silos if s.compute_type == "kubernetes"}
    if manifest.orchestrator.compute_type == "kubernetes":
        found.add(manifest.orchestrator.compute)
    return found


def _places(manifest: FederationManifest) -> tuple[dict[str, Place], list[DataFlowViolation]]:
    """compute name -> who owns it; a compute shared between two owners breaks isolation."""
    owners: dict[str, list[Place]] = {}
    owners.setdefault(manifest.orchestrator.compute, []).append(("orchestrator", "orchestrator"))
    for silo in manifest.silos:
        owners.setdefault(silo.compute, []).append(("silo", silo.name))
    problems = [
        DataFlowViolation(
            "<manifest>",
            None,
            f"compute {compute!r} is shared by {', '.join(name for _, name in places)}; "
            "every silo needs its own compute",
        )
        for compute, places in owners.items()
        if len(places) > 1
    ]
    return {compute: places[0] for compute, places in owners.items()}, problems


def _violation(step: StepIO, datastore: str | None, message: str) -> list[DataFlowViolation]:
    return [DataFlowViolation(step.name, datastore, message)]


def _check_port(
    step: StepIO,
    port: DataPort,
    place: Place,
    manifest: FederationManifest,
    store: ModelStore,
    *,
    write: bool,
) -> list[DataFlowViolation]:
    verb = "writes" if write else "reads"
    what = f"{'output' if write else 'input'} {port.name!r}"
    if port.uri is None:
        source = f" (from step {port.produced_by!r})" if port.produced_by else ""
        return _violation(
            step,
            None,
            f"{what}{source} has no explicit datastore path, so it would use the workspace "
            "default store; give it an azureml://datastores/<name>/paths/... path",
        )
    ref = parse_datastore_uri(port.uri)
    if ref is None:
        return _violation(
            step,
            None,
            f"{what} {port.uri!r} is not an azureml://datastores/<name>/paths/... URI, so the "
            "check cannot tell which store it touches",
        )
    kind, owner = place
    runner = "the orchestrator" if kind == "orchestrator" else f"silo {owner!r}"
    on = f"runs on {runner}'s compute {step.compute!r} but"
    data_owner = {s.datastore: s.name for s in manifest.silos}.get(ref.datastore)
    if data_owner is not None:
        if kind == "silo" and owner == data_owner:
            return []
        return _violation(
            step,
            ref.datastore,
            f"{on} {verb} silo {data_owner!r}'s data datastore through {what}; only silo "
            f"{data_owner!r}'s compute may touch it",
        )
    update_owner = store.update_owner(ref.datastore)
    if update_owner is not None:
        if kind == "silo" and owner != update_owner:
            return _violation(
                step,
                ref.datastore,
                f"{on} {verb} silo {update_owner!r}'s update datastore through {what}; a silo "
                "never sees another silo's updates",
            )
        if kind == "orchestrator" and write:
            return _violation(
                step,
                ref.datastore,
                f"{on} writes silo {update_owner!r}'s update datastore through {what}; only "
                f"silo {update_owner!r} writes its updates",
            )
        return []
    if kind != "silo":
        return []
    if ref.datastore == store.global_datastore:
        if write:
            return _violation(
                step,
                ref.datastore,
                f"silo {owner!r} writes the global model store through {what}; a silo writes "
                f"only its own update datastore {store.update_datastore(owner)!r}",
            )
        if not is_global_model_path(ref.path):
            return _violation(
                step,
                ref.datastore,
                f"silo {owner!r} reads {ref.path!r} from the global model store through {what}; "
                "a silo may read only global models (<job>/global/round-<r>/)",
            )
        return []
    if write:
        return _violation(
            step,
            ref.datastore,
            f"silo {owner!r} writes to datastore {ref.datastore!r} outside the silo through "
            f"{what}; only its model update, in its own update datastore, may leave a silo",
        )
    return []


def check_steps(
    steps: list[StepIO], manifest: FederationManifest, store: ModelStore | None = None
) -> list[DataFlowViolation]:
    """The silo rules over already-described steps (see ``describe_steps``)."""
    store = store or model_store_for(manifest)
    places, violations = _places(manifest)
    for step in steps:
        if step.compute is None:
            violations.append(
                DataFlowViolation(
                    step.name,
                    None,
                    "has no compute, so it would run wherever the pipeline default points; "
                    "pin it to a silo or the orchestrator compute",
                )
            )
            continue
        if step.identity != "managed":
            violations.append(
                DataFlowViolation(
                    step.name,
                    None,
                    f"runs with identity {step.identity or 'unset (the service default)'}, so "
                    "the identity that reaches data is not its compute's; set identity: managed",
                )
            )
        if step.identity_client_id and step.compute in _kubernetes_computes(manifest):
            violations.append(
                DataFlowViolation(
                    step.name,
                    None,
                    f"names managed identity client id {step.identity_client_id} on Kubernetes "
                    f'compute {step.compute!r}, which Azure ML does not take there ("In the '
                    "case of kubernetes cluster compute, the ManagedIdentityCredential object "
                    'should be provided without any client_id"); use identity: managed '
                    "without client_id",
                )
            )
        place = places.get(step.compute)
        if place is None:
            violations.append(
                DataFlowViolation(
                    step.name,
                    None,
                    f"runs on compute {step.compute!r}, which is neither the orchestrator's nor "
                    f"any silo's compute in the manifest (known: {sorted(places)})",
                )
            )
            continue
        for port in step.reads:
            violations.extend(_check_port(step, port, place, manifest, store, write=False))
        for port in step.writes:
            violations.extend(_check_port(step, port, place, manifest, store, write=True))
    return violations


def check_data_flow(
    pipeline_job: Any, manifest: FederationManifest, store: ModelStore | None = None
) -> list[DataFlowViolation]:
    """Every violation of the silo rules in ``pipeline_job``; empty means it may be submitted.
    ``store`` defaults to the model store the infrastructure registers for ``manifest``."""
    return check_steps(describe_steps(pipeline_job), manifest, store)


def require_data_flow(
    pipeline_job: Any, manifest: FederationManifest, store: ModelStore | None = None
) -> None:
    """Raise ``DataFlowError`` listing every violation, if there is any."""
    violations = check_data_flow(pipeline_job, manifest, store)
    if violations:
        raise DataFlowError(violations)
