"""Every sample stack plans the same resource URNs as recorded in ``fixtures/stack_urns.json``.

A URN is how ``pulumi up`` matches a declared resource with a deployed one: a renamed resource,
a new parent or a new type token is a different URN, so Pulumi deletes the deployed resource and
creates a new one (data in a storage account included). Refactors of the builder, the
components or the silo kinds must therefore leave these URNs as they are.

The fixture stores each URN without its constant ``urn:pulumi:<stack>::fl-sandbox::`` prefix.
When a change of URNs is intended (a new resource, say), record the new ones with
``python -m tests.infra.test_stack_urns`` and say in the change why deployed stacks may see
replacements.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.infra.kubernetes_runs import REPO, stack_run

FIXTURE = Path(__file__).with_name("fixtures") / "stack_urns.json"
STACKS = sorted(p.name.split(".")[1] for p in (REPO / "stacks").glob("Pulumi.*.yaml"))


def planned_urns(stack: str) -> list[str]:
    """The URNs ``stacks/Pulumi.<stack>.yaml`` plans, sorted, without the stack prefix (the
    mock run is cached and shared with the other modules that plan the sample stacks)."""
    return sorted(urn.split("::", 2)[2] for urn in (r.urn for r in stack_run(stack).resources))


def recorded() -> dict[str, list[str]]:
    data: dict[str, list[str]] = json.loads(FIXTURE.read_text())
    return data


def test_every_sample_stack_is_recorded() -> None:
    assert sorted(recorded()) == STACKS


@pytest.mark.parametrize("stack", STACKS)
def test_sample_stack_urns_are_unchanged(stack: str) -> None:
    before, now = set(recorded()[stack]), set(planned_urns(stack))
    added, removed = sorted(now - before), sorted(before - now)
    assert not added and not removed, (
        f"stacks/Pulumi.{stack}.yaml plans different URNs than {FIXTURE.name} records; "
        "a changed URN makes `pulumi up` delete and replace the deployed resource.\n"
        + "".join(f"  added:   {urn}\n" for urn in added)
        + "".join(f"  removed: {urn}\n" for urn in removed)
        + "If the change is intended, rerun `python -m tests.infra.test_stack_urns`."
    )


if __name__ == "__main__":
    FIXTURE.write_text(json.dumps({s: planned_urns(s) for s in STACKS}, indent=1) + "\n")
    print(f"recorded {FIXTURE}")
