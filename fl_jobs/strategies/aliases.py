"""Strategy names users expect that are settings of another strategy.

``fedavgm`` (FedAvg with server momentum; Hsu et al. 2019, "Measuring the Effects of
Non-Identical Data Distribution for Federated Visual Classification") is FedAvg with
``server_momentum``: ``--strategy fedavgm`` (or ``strategy: fedavgm``) becomes
``--strategy fedavg --server-momentum 0.9`` (the paper's beta), or keeps the
``--server-momentum`` given.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fl_jobs.errors import JobConfigError

FEDAVGM_MOMENTUM = 0.9


def _name(value: Any) -> Any:
    return value.get("name") if isinstance(value, Mapping) else value


def expand_aliases(data: dict[str, Any], given: dict[str, Any]) -> None:
    """Rewrite an alias in the job file's ``data`` or the command line's ``given``, in place."""
    for source in (given, data):
        if _name(source.get("strategy")) != "fedavgm":
            continue
        section = source["strategy"]
        if isinstance(section, Mapping) and set(section) - {"name"}:
            extra = ", ".join(sorted(set(section) - {"name"}))
            raise JobConfigError(
                f"strategy fedavgm takes no strategy options ({extra})",
                "set the server momentum with --server-momentum (server_momentum: in YAML)",
            )
        source["strategy"] = "fedavg"
        server = data.get("server")
        in_section = server.get("momentum") if isinstance(server, Mapping) else None
        momentum = given.get("server_momentum", data.get("server_momentum", in_section))
        if momentum is None:
            given["server_momentum"] = FEDAVGM_MOMENTUM
        elif not 0 < float(momentum) < 1:
            raise JobConfigError(
                f"strategy fedavgm with server_momentum {momentum}",
                "FedAvgM needs --server-momentum in (0, 1), e.g. 0.9; or use --strategy fedavg",
            )
