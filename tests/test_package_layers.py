"""The packages form layers without cycles: components (vocabulary and Pulumi components) <-
policies (checks over a recorded graph) <- blueprints (the builder and the plan), with fl_jobs
used by blueprints only for the manifest. Imports anywhere in a module count, function-local
ones included, so no cycle hides behind a late import."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("components", "policies", "blueprints", "fl_jobs")


def _edges() -> dict[str, dict[str, list[str]]]:
    found: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names: list[str] = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                for name in names:
                    top = name.split(".")[0]
                    if top in PACKAGES and top != package:
                        found[package][top].append(str(path.relative_to(REPO)))
    return found


def test_no_cycle_between_packages() -> None:
    edges = _edges()
    seen: dict[str, int] = {}

    def visit(package: str, trail: list[str]) -> None:
        if seen.get(package) == 1:
            raise AssertionError(f"import cycle: {' -> '.join([*trail, package])}")
        if seen.get(package) == 2:
            return
        seen[package] = 1
        for target in edges[package]:
            visit(target, [*trail, package])
        seen[package] = 2

    for package in PACKAGES:
        visit(package, [])


def test_the_checks_need_nothing_from_the_blueprints() -> None:
    edges = _edges()
    assert not edges["policies"]["blueprints"], edges["policies"]["blueprints"]
    assert not edges["components"]["policies"] and not edges["components"]["blueprints"]


def test_every_blueprint_has_its_posture_in_the_vocabulary() -> None:
    from blueprints.catalog import BLUEPRINTS
    from components.posture import BLUEPRINT_POSTURES

    assert {name: bp.posture for name, bp in BLUEPRINTS.items()} == dict(BLUEPRINT_POSTURES)


def test_the_graph_reads_the_posture_the_stack_exported() -> None:
    from components.posture import BLUEPRINT_POSTURES
    from policies.graph import ResourceGraph

    private = BLUEPRINT_POSTURES["private"]
    exported = ResourceGraph.build([], {"blueprint": "renamed", "posture": private.to_output()})
    assert exported.posture == private
    by_name = ResourceGraph.build([], {"blueprint": "eyes-off"})
    assert by_name.posture == BLUEPRINT_POSTURES["eyes-off"]
    garbage = ResourceGraph.build([], {"blueprint": "nope", "posture": {"networked": "yes"}})
    assert garbage.posture is None
