"""How the offline plan looks to a person: rich tables and a tree, invariants last.

The JSON form (``Plan.to_dict``) carries the same content for machines; this module only
chooses what a human needs to read before paying for a deployment.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from blueprints.plan import Plan
from policies.access_matrix import access_entries
from policies.azure_rules import RULES
from policies.invariants import INVARIANTS

JOB_PATH_ROWS = 60
"""Above this many movements (large federations) only the broken ones and a count print."""


def _short(type_token: str) -> str:
    return type_token.split(":", 1)[-1]


def _tree(plan: Plan) -> Tree:
    root = Tree(f"[bold]{plan.spec.blueprint}[/] sandbox ({len(plan.spec.silos)} silos)")

    def add(parent: Tree, node: dict[str, Any]) -> None:
        if node["component"]:
            label = f"[bold cyan]{node['name']}[/] [dim]{_short(node['type'])}[/]"
        else:
            arm = node["arm_name"]
            shown = f" [green]{arm}[/]" if arm and arm != node["name"] else ""
            read = " [yellow](read, not managed)[/]" if node["read"] else ""
            label = f"{_short(node['type'])} {node['name']}{shown}{read}"
        branch = parent.add(label)
        for child in node["children"]:
            add(branch, child)

    for node in plan.tree():
        add(root, node)
    return root


def _counts(plan: Plan) -> Table:
    table = Table(title=f"Resources by type ({len(plan.custom_resources)} managed)")
    table.add_column("type")
    table.add_column("count", justify="right")
    for type_token, count in plan.counts_by_type().items():
        table.add_row(_short(type_token), str(count))
    return table


def _read(plan: Plan) -> Table:
    table = Table(
        title="Read from Azure, not managed (the stack never changes or deletes them; their "
        "settings are checked at deployment)"
    )
    table.add_column("type")
    table.add_column("name")
    table.add_column("ARM id", overflow="fold")
    for record in plan.read_resources:
        table.add_row(_short(record.type), record.name, record.id or "")
    return table


def _access(plan: Plan) -> Table:
    table = Table(title="Access matrix (who holds which role where)")
    for column in ("principal", "target", "role", "scope"):
        table.add_column(column)
    for entry in access_entries(plan.graph):
        table.add_row(entry.principal, entry.target, entry.role, entry.scope_level)
    return table


def _network(plan: Plan) -> list[Table]:
    layout = plan.network
    if not layout["vnets"]:
        return []
    vnets = Table(title="Network: VNets and subnets")
    for column in ("vnet", "owner", "address space", "subnets"):
        vnets.add_column(column)
    for vnet in layout["vnets"]:
        subnets = ", ".join(
            f"{s['name']} {' '.join(s['address_prefixes'])}" for s in vnet["subnets"]
        )
        vnets.add_row(vnet["name"], vnet["owner"], " ".join(vnet["address_space"]), subnets)
    tables = [vnets]
    if layout["private_endpoints"]:
        endpoints = Table(title="Network: private endpoints")
        for column in ("endpoint", "subnet", "target", "groups"):
            endpoints.add_column(column)
        for pe in layout["private_endpoints"]:
            endpoints.add_row(
                pe["name"], pe["subnet"] or "?", str(pe["target"]), ",".join(pe["groups"])
            )
        tables.append(endpoints)
    if layout["peerings"]:
        peerings = Table(title="Network: peerings")
        peerings.add_column("peering")
        peerings.add_column("from -> to")
        for peering in layout["peerings"]:
            peerings.add_row(peering["name"], f"{peering['from']} -> {peering['to']}")
        tables.append(peerings)
    if layout["private_dns_zones"]:
        zones = Table(title="Network: private DNS zones")
        zones.add_column("zone")
        zones.add_column("linked VNets")
        for zone in layout["private_dns_zones"]:
            zones.add_row(zone["zone"], ", ".join(zone["linked_vnets"]))
        tables.append(zones)
    return tables


def _invariants(plan: Plan) -> Table:
    table = Table(title="Isolation invariants")
    table.add_column("#", justify="right")
    table.add_column("invariant")
    table.add_column("result")
    for invariant in INVARIANTS:
        broken = plan.results[invariant.id]
        result = f"[red]{len(broken)} violation(s)[/]" if broken else "[green]holds[/]"
        table.add_row(str(invariant.number), invariant.title, result)
    return table


def _rules(plan: Plan) -> Table:
    table = Table(title="Azure's rules (what ARM refuses, what fails jobs at run time)")
    table.add_column("#", justify="right")
    table.add_column("rule")
    table.add_column("result")
    for rule in RULES:
        broken = plan.rule_results[rule.id]
        result = f"[red]{len(broken)} violation(s)[/]" if broken else "[green]holds[/]"
        title = rule.title + (" [dim](unverified)[/]" if rule.unverified else "")
        table.add_row(str(rule.number), title, result)
    return table


def _job_path(plan: Plan) -> Table:
    moves = plan.movements
    shown = moves if len(moves) <= JOB_PATH_ROWS else [m for m in moves if not m.ok]
    broken = sum(1 for m in moves if not m.ok)
    title = f"Job path of one FL round ({len(moves)} data movements, {broken} broken)"
    if len(shown) < len(moves):
        title += f"; the {len(moves) - len(shown)} that hold are in --json"
    table = Table(title=title)
    for column in ("movement", "target", "role held", "network path", "ok"):
        table.add_column(column)
    step = None
    for m in shown:
        if (m.step, m.actor) != step:
            step = (m.step, m.actor)
            table.add_section()
            table.add_row(Text(f"{m.step}", style="bold"), Text(f"as {m.actor}", style="dim"))
        role = f"[red]{m.role_detail}[/] (needs {m.role})" if m.role_ok is False else m.role_detail
        route = f"[red]{m.route or 'none'}[/]" if m.network_ok is False else m.route
        verdict = {"ok": "[green]yes[/]", "assumed": "[yellow]assumed[/]"}.get(
            m.status, "[red]no[/]"
        )
        table.add_row(m.what, m.target, role, route, verdict)
    return table


def render(plan: Plan, console: Console) -> None:
    """Print the plan for a person; violations and problems at the very end."""
    console.print(_tree(plan))
    console.print(_counts(plan))
    if plan.read_resources:
        console.print(_read(plan))
    console.print(_access(plan))
    for table in _network(plan):
        console.print(table)
    console.print(_invariants(plan))
    console.print(_rules(plan))
    console.print(_job_path(plan))
    for step, assumed in dict.fromkeys((m.step, m.assumed) for m in plan.movements if m.assumed):
        console.print(Text.assemble(("assumed ", "bold yellow"), f"{step}: {assumed}"))
    for violation in plan.violations:
        console.print(Text.assemble(("violation ", "bold red"), str(violation)))
    if plan.manifest_error:
        console.print(Text.assemble(("manifest ", "bold red"), plan.manifest_error))
    for a, b in plan.network["overlaps"]:
        console.print(Text.assemble(("network ", "bold red"), f"VNets {a} and {b} overlap"))
    assumed_count = sum(1 for m in plan.movements if m.status == "assumed")
    verdict = (
        "[green]OK[/]: every invariant and Azure rule holds, and an FL job's path is clear"
        if plan.ok
        else "[red]FAILED[/]"
    )
    if plan.ok and assumed_count:
        verdict += f" [yellow]if[/] you provide what the {assumed_count} assumed movements need"
    console.print(verdict)
