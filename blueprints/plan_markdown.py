"""The offline plan as GitHub-flavoured markdown, for a pull-request comment: a verdict line,
then the sections a reviewer asks for (``--section``), from the same document as ``--json``.

Sections: ``summary`` (resource counts by type), ``access`` (identities x storage -> roles),
``network``, ``checks`` (invariants and Azure's rules, broken ones with their violations),
``job-path`` (every data movement of one FL round), ``compute-identities`` (the identity a
submitter reaches by choosing each compute, and its roles). The default is all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

SECTIONS: tuple[str, ...] = (
    "summary",
    "access",
    "network",
    "checks",
    "job-path",
    "compute-identities",
)


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _table(headers: list[str], rows: Iterable[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines


def _summary(doc: dict[str, Any]) -> list[str]:
    rows = [[t.split(":", 1)[-1], n] for t, n in doc["counts_by_type"].items()]
    return [f"### Resources ({doc['resource_count']})", "", *_table(["type", "count"], rows)]


def _access(doc: dict[str, Any]) -> list[str]:
    entries = doc["access_matrix"]["entries"]
    rows = [[e["principal"], e["target"], e["role"], e["scope_level"]] for e in entries]
    return [
        f"### Access matrix ({len(entries)} role assignments on storage)",
        "",
        *_table(["identity", "storage", "role", "scope"], rows),
    ]


def _network(doc: dict[str, Any]) -> list[str]:
    net = doc["network"]
    out = ["### Network", ""]
    if not any(net.get(k) for k in ("vnets", "private_endpoints", "peerings")):
        return [*out, "Public endpoints only (no virtual networks in this blueprint)."]
    vnets = [
        [v.get("name"), ", ".join(v.get("address_space", []) or []), len(v.get("subnets", []))]
        for v in net.get("vnets", [])
    ]
    out += _table(["virtual network", "address space", "subnets"], vnets)
    out += [
        "",
        f"{len(net.get('private_endpoints', []))} private endpoints, "
        f"{len(net.get('peerings', []))} peerings, "
        f"{len(net.get('private_dns_zones', []))} private DNS zones; "
        f"overlapping address spaces: {len(net.get('overlaps', []))}.",
    ]
    return out


def _checks(doc: dict[str, Any]) -> list[str]:
    out = ["### Checks", ""]
    rows = []
    for kind, items in (("invariant", doc["invariants"]), ("Azure rule", doc["azure_rules"])):
        for item in items:
            mark = "ok" if item["ok"] else "**broken**"
            rows.append([f"{kind} {item['number']}", item["title"], mark])
    out += _table(["check", "what", "result"], rows)
    for item in [*doc["invariants"], *doc["azure_rules"]]:
        for violation in item.get("violations", []):
            out.append(f"- {item['id']}: {_cell(violation)}")
    return out


def _job_path(doc: dict[str, Any]) -> list[str]:
    moves = doc["job_path"]["movements"]
    rows = [
        [
            m["step"],
            m["what"],
            m["actor"],
            m["target"],
            m["route"],
            "ok" if m["ok"] else m["problem"],
        ]
        for m in moves
    ]
    return [
        f"### Job path of one FL round ({len(moves)} movements)",
        "",
        *_table(["step", "what", "actor", "target", "route", "result"], rows),
    ]


def _compute_identities(doc: dict[str, Any]) -> list[str]:
    rows = [
        [
            r["compute"],
            r["kind"],
            r["identity"],
            ", ".join(f"{g['role']} on {g['on']}" for g in r["roles"]) or "-",
            ", ".join(r["reads"]) or "-",
            ", ".join(r["writes"]) or "-",
            ", ".join(r["hands_to_submitters"]) or "-",
            "yes" if r["internet_egress"] else "no",
            "; ".join(r["refused"]) or "ok",
        ]
        for r in doc["compute_identities"]
    ]
    return [
        "### Which identity a submitter reaches by choosing each compute (rule 30)",
        "",
        "Any submitter may run code on any compute, as that compute's identity: it reads what "
        "the identity reads, and can copy it where every submitter reads (job outputs and "
        "logs) or, with internet egress, anywhere. Submitted code is trusted code "
        '(docs/infrastructure.md, "What a submitter can reach").',
        "",
        *_table(
            [
                "compute",
                "type",
                "runs as",
                "roles",
                "a job here reads",
                "and can write or delete",
                "and can write where every submitter reads",
                "internet",
                "result",
            ],
            rows,
        ),
    ]


RENDERERS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "summary": _summary,
    "access": _access,
    "network": _network,
    "checks": _checks,
    "job-path": _job_path,
    "compute-identities": _compute_identities,
}


def render_markdown(doc: dict[str, Any], sections: Iterable[str] = SECTIONS) -> str:
    """Markdown for ``doc`` (``Plan.to_dict()``), with the chosen sections in SECTIONS order."""
    chosen = set(sections)
    verdict = "every check holds" if doc["ok"] else "**checks broken** (see below)"
    lines = [
        f"## Offline plan: `{doc['blueprint']}`, {len(doc['silos'])} silos, "
        f"{doc['resource_count']} resources: {verdict}",
    ]
    for name in SECTIONS:
        if name in chosen:
            lines += ["", *RENDERERS[name](doc)]
    return "\n".join(lines) + "\n"
