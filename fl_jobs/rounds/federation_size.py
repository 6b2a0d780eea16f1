"""One place that decides how many silos a federation has.

- ``run`` (local): the job's ``silos`` (``--silos``, the job file, or the default).
- ``submit`` and ``scripts/prepare_silo_data.py`` (Azure ML): the manifest's silos, always.
  A job file that sets ``silos`` to another count is refused with the fix, instead of being
  replaced in silence (its ``min_silos`` and the strategy's floor were then checked against a
  count the job never had); the job is validated again at the manifest's size, so that
  ``min_silos`` above it, or a strategy needing more updates, is refused here too.
"""

from __future__ import annotations

from pydantic import ValidationError

from fl_jobs.config import JobConfig
from fl_jobs.run.manifest import FederationManifest, ManifestError


def silo_count(config: JobConfig, manifest: FederationManifest | None = None) -> int:
    """The federation's size: the manifest's silos when there is one, else the job's."""
    return len(manifest.silos) if manifest is not None else config.federation.silos


def sized_for(config: JobConfig, manifest: FederationManifest) -> JobConfig:
    """``config`` with the manifest's silo count; ManifestError if the job disagrees."""
    n = silo_count(config, manifest)
    names = ", ".join(s.name for s in manifest.silos)
    if "silos" in config.federation.model_fields_set and config.federation.silos != n:
        raise ManifestError(
            f"the job sets silos: {config.federation.silos} but the manifest of blueprint "
            f"{manifest.blueprint!r} has {n} silos ({names}) - set silos: {n} in the job "
            "file, or drop silos (the manifest decides)"
        )
    data = config.model_dump(mode="python", exclude_unset=True)
    data.setdefault("federation", {})["silos"] = n
    try:
        return JobConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        raise ManifestError(
            f"the job does not fit the manifest's {n} silos ({names}): {problems}"
        ) from None
