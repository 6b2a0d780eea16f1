"""The Azure VM sizes the sandbox knows: which are GPU, which are confidential, how many GPUs.

A silo's compute SKU, a Kubernetes node pool's size and an instance type's GPU request are
checked against this table before anything is declared, so a GPU instance type on a CPU pool,
or a non-confidential pool in the confidential blueprint, is a config error naming the fix
rather than a job that never schedules. Sizes of the N-series (GPU) must be listed here;
CPU sizes only need Azure's naming form. Region availability is not tabled: Azure publishes
it per region and changes it often, so ARM checks it at deployment.

Sources: the Azure VM size pages for the NCv3, NCasT4_v3, NC A100 v4, ND A100 v4, NDv2,
NCCads H100 v5, DCasv5/DCadsv5 and ECasv5/ECadsv5 series.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class VmFamily:
    """A VM series: its name, the sizes it has, GPUs per size, and whether it is confidential."""

    name: str
    pattern: re.Pattern[str]
    gpus: dict[str, int]
    """GPU count by the size's leading number (e.g. NC24ads_A100_v4 -> 24 -> 1); empty: CPU."""
    confidential: bool = False

    def gpu_count(self, size: str) -> int:
        match = self.pattern.match(size)
        if match is None or not self.gpus:
            return 0
        return self.gpus.get(match.group(1), 0)


def _family(
    name: str, pattern: str, gpus: dict[str, int] | None = None, confidential: bool = False
) -> VmFamily:
    return VmFamily(name, re.compile(pattern), gpus or {}, confidential)


FAMILIES: tuple[VmFamily, ...] = (
    _family("NCv3 (V100)", r"^Standard_NC(6|12|24)r?s_v3$", {"6": 1, "12": 2, "24": 4}),
    _family(
        "NCasT4_v3 (T4)", r"^Standard_NC(4|8|16|64)as_T4_v3$", {"4": 1, "8": 1, "16": 1, "64": 4}
    ),
    _family("NC A100 v4", r"^Standard_NC(24|48|96)ads_A100_v4$", {"24": 1, "48": 2, "96": 4}),
    _family("ND A100 v4", r"^Standard_ND(96)am?sr_A100_v4$", {"96": 8}),
    _family("NDv2 (V100)", r"^Standard_ND(40)rs_v2$", {"40": 8}),
    _family(
        "NCCads H100 v5 (confidential GPU)",
        r"^Standard_NCC(40)ads_H100_v5$",
        {"40": 1},
        confidential=True,
    ),
    _family("DCasv5/DCadsv5 (AMD SEV-SNP)", r"^Standard_DC(\d+)a(d)?s_v5$", confidential=True),
    _family("ECasv5/ECadsv5 (AMD SEV-SNP)", r"^Standard_EC(\d+)a(d)?s_v5$", confidential=True),
)

_VM_SIZE = re.compile(r"^(Standard|Basic)_[A-Z]+[0-9]+(-[0-9]+)?[a-z]*(_[A-Za-z0-9]+)*$")
_GPU_SERIES = re.compile(r"^Standard_N")


class UnknownSize(ValueError):
    """A size the table cannot vouch for: what is wrong, and the fix."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(f"{problem} - {fix}")
        self.problem = problem
        self.fix = fix


@dataclass(frozen=True)
class VmSize:
    """What the sandbox knows about one size."""

    name: str
    family: VmFamily | None
    gpus: int
    confidential: bool


def vm_size(size: str) -> VmSize:
    """Look ``size`` up; UnknownSize when it is not Azure's form or an unlisted GPU size."""
    if not _VM_SIZE.match(size):
        raise UnknownSize(
            "not an Azure VM size",
            "use Azure's form Standard_<family><vCPUs>[features][_version], e.g. Standard_DS3_v2",
        )
    for family in FAMILIES:
        if family.pattern.match(size):
            return VmSize(size, family, family.gpu_count(size), family.confidential)
    if _GPU_SERIES.match(size):
        known = ", ".join(f.name for f in FAMILIES if f.gpus)
        raise UnknownSize(
            "an N-series (GPU) size the sandbox does not know",
            f"use a size of a known GPU series ({known}), or add its series to "
            "components/vocabulary/vm_sizes.py",
        )
    return VmSize(size, None, 0, False)


def confidential_families() -> str:
    """The confidential series, for messages."""
    return ", ".join(f.name for f in FAMILIES if f.confidential)
