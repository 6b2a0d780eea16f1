"""The pack's policies as importable objects (tests call their ``validate`` directly).

One stack policy per isolation invariant and per Azure rule (they need the whole graph: who
a principal is, what a scope reaches, what resolves where), one for the job path of an FL
round, and two resource policies that stop an unsafe storage account or an always-on compute
before it is created. All reuse the functions of ``policies.invariants``,
``policies.azure_rules`` and ``policies.job_path``, so the pack, the offline plan and the
tests agree by construction.

Optional policy config ``blueprint`` (a name of
``components.vocabulary.posture.BLUEPRINT_POSTURES``) states the blueprint when the stack's
outputs (``posture``, ``federation``) are not available, e.g. on the first preview.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from components.vocabulary.posture import BLUEPRINT_POSTURES
from policies.azure_rules import RULES
from policies.crossguard.deployed_graph import DeployedResource, graph_from_stack, plain
from policies.graph import COMPUTE, STORAGE_ACCOUNT, Node, ResourceGraph
from policies.invariants import INVARIANTS
from policies.invariants.compute_placement import scale_problems
from policies.invariants.storage_hardening import setting_problems
from policies.job_path import check_job_path
from policies.violation import Violation

PACK_NAME = "fl-sandbox-isolation"
BLUEPRINTS = list(BLUEPRINT_POSTURES)

_CONFIG = PolicyConfigSchema(
    properties={"blueprint": {"type": "string", "enum": BLUEPRINTS}}, required=[]
)


def _blueprint(config: Mapping[str, Any]) -> str | None:
    value = config.get("blueprint")
    return value if isinstance(value, str) and value else None


StackValidator = Callable[[StackValidationArgs, ReportViolation], None]


def _stack_validator(check: Callable[[ResourceGraph], list[Violation]]) -> StackValidator:
    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        graph = graph_from_stack(args.resources, _blueprint(args.get_config()))
        for violation in check(graph):
            report(str(violation), violation.urn)

    return validate


def _single(args: ResourceValidationArgs) -> tuple[ResourceGraph, Node]:
    resource = DeployedResource(
        urn=args.urn,
        type=args.resource_type,
        name=args.name,
        parent=None,
        outputs={},
        inputs=plain(args.props),
    )
    blueprint = _blueprint(args.get_config())
    graph = ResourceGraph.build([resource], {"federation": {"blueprint": blueprint}})
    return graph, graph.nodes[0]


def _validate_storage(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != STORAGE_ACCOUNT:
        return
    _, node = _single(args)
    for problem, fix in setting_problems(node):
        report(f"{node.label}: {problem} Fix: {fix}", None)


def _validate_compute(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != COMPUTE:
        return
    graph, node = _single(args)
    for problem, fix in scale_problems(graph, node):
        report(f"{node.label}: {problem} Fix: {fix}", None)


STACK_POLICIES: list[StackValidationPolicy] = [
    *(
        StackValidationPolicy(
            name=f"fl-sandbox-{invariant.number}-{invariant.id}",
            description=f"Isolation invariant {invariant.number}: {invariant.title}.",
            validate=_stack_validator(invariant.check),
            enforcement_level=EnforcementLevel.MANDATORY,
            config_schema=_CONFIG,
        )
        for invariant in INVARIANTS
    ),
    *(
        StackValidationPolicy(
            name=f"fl-sandbox-{rule.id}",
            description=f"Azure rule {rule.number}: {rule.title} (source: {rule.source}).",
            validate=_stack_validator(rule.check),
            enforcement_level=EnforcementLevel.MANDATORY,
            config_schema=_CONFIG,
        )
        for rule in RULES
    ),
    StackValidationPolicy(
        name="fl-sandbox-job-path",
        description="Every data movement of one FL round: the actor holds the role and can "
        "reach the target over the network.",
        validate=_stack_validator(check_job_path),
        enforcement_level=EnforcementLevel.MANDATORY,
        config_schema=_CONFIG,
    ),
]

RESOURCE_POLICIES: list[ResourceValidationPolicy] = [
    ResourceValidationPolicy(
        name="fl-sandbox-storage-settings",
        description="Storage accounts: shared-key access off, public blob access off, TLS 1.2.",
        validate=_validate_storage,
        enforcement_level=EnforcementLevel.MANDATORY,
        config_schema=_CONFIG,
    ),
    ResourceValidationPolicy(
        name="fl-sandbox-compute-idle-cost",
        description="AML clusters scale to 0 nodes; no public node IPs in eyes-off.",
        validate=_validate_compute,
        enforcement_level=EnforcementLevel.MANDATORY,
        config_schema=_CONFIG,
    ),
]

POLICIES = [*STACK_POLICIES, *RESOURCE_POLICIES]
