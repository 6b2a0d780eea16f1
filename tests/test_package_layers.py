"""The packages form layers without cycles: components (its ``vocabulary`` of pure data, then
the Pulumi components) <- policies (checks over a recorded graph) <- blueprints (the builder and
the plan), with fl_jobs used by blueprints only for the manifest. Imports anywhere in a module
count, function-local ones included, so no cycle hides behind a late import."""

from __future__ import annotations

import ast
import sys
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


def _imports(path: Path) -> list[str]:
    """Every module ``path`` imports, anywhere in it, relative imports resolved (a name
    imported from a module counts as that module's submodule too)."""
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            module = node.module or ""
            module = module if node.level == 0 else f"{base}.{module}".rstrip(".")
            found.append(module)
            # ``from fl_jobs.silo import silo_round`` imports fl_jobs.silo.silo_round
            found += [f"{module}.{alias.name}" for alias in node.names if alias.name != "*"]
    return found


def test_the_vocabulary_imports_nothing_outside_itself() -> None:
    """The vocabulary is what the checks share with the components: pure data and rules. It
    imports no Pulumi (the checks then need none through it) and no other part of the
    repository, only the standard library, pydantic and its own modules."""
    allowed = {*sys.stdlib_module_names, "pydantic", "pydantic_core"}
    found = [
        f"{path.relative_to(REPO)}: {module}"
        for path in sorted((REPO / "components" / "vocabulary").rglob("*.py"))
        for module in _imports(path)
        if module.split(".")[0] not in allowed
        and not (module + ".").startswith("components.vocabulary.")
    ]
    assert found == [], found


def test_every_blueprint_has_its_posture_in_the_vocabulary() -> None:
    from blueprints.catalog import BLUEPRINTS
    from components.vocabulary.posture import BLUEPRINT_POSTURES

    assert {name: bp.posture for name, bp in BLUEPRINTS.items()} == dict(BLUEPRINT_POSTURES)


def test_the_graph_reads_the_posture_the_stack_exported() -> None:
    from components.vocabulary.posture import BLUEPRINT_POSTURES
    from policies.graph import ResourceGraph

    private = BLUEPRINT_POSTURES["private"]
    exported = ResourceGraph.build([], {"blueprint": "renamed", "posture": private.to_output()})
    assert exported.posture == private
    by_name = ResourceGraph.build([], {"blueprint": "eyes-off"})
    assert by_name.posture == BLUEPRINT_POSTURES["eyes-off"]
    garbage = ResourceGraph.build([], {"blueprint": "nope", "posture": {"networked": "yes"}})
    assert garbage.posture is None


#: fl_jobs parts below the engines: the job config, the examples and the strategies. No
#: import path from what they import leads back to them, function-local imports included.
CONFIG_LAYER = ("fl_jobs.config", "fl_jobs.examples", "fl_jobs.strategies")


def _fl_jobs_graph() -> dict[str, set[str]]:
    """fl_jobs' parts (a sub-package, or a top-level module) -> the parts it imports."""
    root = REPO / "fl_jobs"
    parts = {".".join(p.relative_to(REPO).with_suffix("").parts[:2]) for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = defaultdict(set)
    for path in root.rglob("*.py"):
        me = ".".join(path.relative_to(REPO).with_suffix("").parts[:2])
        for module in _imports(path):
            target = ".".join(module.split(".")[:2])
            if target in parts and target != me:
                graph[me].add(target)
    return graph


def test_the_config_layer_is_below_everything_that_uses_it() -> None:
    graph = _fl_jobs_graph()
    for part in CONFIG_LAYER:
        seen: set[str] = set()
        trail: dict[str, str] = {}
        todo = list(graph[part])
        for target in todo:
            trail.setdefault(target, part)
        while todo:
            current = todo.pop()
            if current in seen:
                continue
            seen.add(current)
            for target in graph[current]:
                trail.setdefault(target, current)
                todo.append(target)
        if part in seen:
            path, node = [part], trail[part]
            while node != part:
                path.append(node)
                node = trail[node]
            raise AssertionError(f"import cycle: {' <- '.join([*path, part])}")


def test_fl_jobs_is_grouped_by_layer() -> None:
    """Every module of fl_jobs lives in the sub-package of its layer (fl_jobs/core,
    fl_jobs/config, fl_jobs/silo, fl_jobs/rounds, fl_jobs/run, fl_jobs/cli, ...), so that a
    reader finds a concept by its folder: only the package's own entry modules and its error
    types stay at the top."""
    top = sorted(p.stem for p in (REPO / "fl_jobs").glob("*.py"))
    assert top == ["__init__", "__main__", "errors"], top


#: What the ML core must not import: it trains, evaluates and aggregates on plain values and
#: knows nothing of a job's config, its run, its engines, its command line or its transports.
ABOVE_THE_CORE = (
    "fl_jobs.config",
    "fl_jobs.run",
    "fl_jobs.rounds",
    "fl_jobs.cli",
    "fl_jobs.local",
    "fl_jobs.store",
    "fl_jobs.aml",
    "fl_jobs.silo",
)


def test_the_core_imports_nothing_above_it() -> None:
    found = [
        f"{path.relative_to(REPO)}: {module}"
        for path in sorted((REPO / "fl_jobs" / "core").rglob("*.py"))
        for module in _imports(path)
        if any(module == part or module.startswith(part + ".") for part in ABOVE_THE_CORE)
    ]
    assert found == [], found
