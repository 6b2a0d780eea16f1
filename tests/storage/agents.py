"""A federation of real agent processes over Azurite, for the store tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import torch

from fl_jobs.core.model_io import load_weights
from fl_jobs.store import layout
from tests.azurite import REPO_ROOT, AzuriteServer
from tests.storage.identity_endpoint import IdentityEndpoint


@dataclass
class Federation:
    """Manifest, job file, containers and agent processes of one job on one Azurite."""

    root: Path
    azurite: AzuriteServer
    identity: IdentityEndpoint
    silos: list[str]
    settings: dict[str, object]
    job: str = field(default_factory=lambda: f"job-{uuid.uuid4().hex[:10]}")
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.manifest = self.root / "manifest.json"
        self.manifest.write_text(
            json.dumps(
                {
                    "blueprint": "local",
                    "orchestrator": {"compute": "local", "datastore": "local"},
                    "silos": [
                        {
                            "name": s,
                            "region": "local",
                            "kind": "local",
                            "compute": "local",
                            "datastore": str(self.root / s),
                        }
                        for s in self.silos
                    ],
                }
            )
        )
        self.job_file = self.root / "job.yaml"
        settings = {"example": "digits", "silos": len(self.silos), **self.settings}
        self.job_file.write_text("".join(f"{k}: {v}\n" for k, v in settings.items()))
        service = self.azurite.service_client()
        containers = [layout.GLOBAL_CONTAINER, layout.SIGNING_KEYS_CONTAINER]
        for name in [*containers, *map(layout.silo_container, self.silos)]:
            if not service.get_container_client(name).exists():
                service.create_container(name)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "MSI_"))}
        env.update(self.azurite.client_env)
        env.update(self.identity.env)
        env["PYTHONPATH"] = str(REPO_ROOT)
        env["FL_SANDBOX_STORE_URL"] = self.azurite.account_url
        return env

    def common(self) -> list[str]:
        return ["--manifest", str(self.manifest), "--config", str(self.job_file), "--job", self.job]

    def start(self, *args: str, log: str) -> subprocess.Popen[bytes]:
        out = (self.root / f"{log}.log").open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "fl_jobs", "agent", *args],
            env=self.env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=self.root,
        )
        out.close()
        self.procs.append(proc)
        return proc

    def orchestrator(self, out: str = "orchestrator") -> subprocess.Popen[bytes]:
        return self.start("orchestrator", *self.common(), "--out", str(self.root / out), log=out)

    def silo(self, silo: str, *extra: str) -> subprocess.Popen[bytes]:
        return self.start(
            "silo",
            "--silo",
            silo,
            *self.common(),
            "--work",
            str(self.root / silo),
            *extra,
            log=silo,
        )

    def rounds(self, out: str = "orchestrator") -> list[dict]:
        """The orchestrator's round records (``rounds.jsonl``), as far as written."""
        path = self.root / out / "rounds.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def log(self, name: str) -> str:
        path = self.root / f"{name}.log"
        return path.read_text() if path.exists() else ""

    def head(self) -> dict | None:
        blob = self.azurite.service_client().get_blob_client(
            layout.GLOBAL_CONTAINER, layout.head_blob(self.job)
        )
        if not blob.exists():
            return None
        return json.loads(blob.download_blob().readall())

    def wait_for(self, what: str, check, timeout: float = 180.0) -> None:
        """Wait for a state (not a time): ``check()`` true; fail naming ``what``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}\n" + self.logs())

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.root.glob("*.log"))
        )

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)


def final_weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_weights(folder / "global_model.pt")[0]


def run_local(root: Path, job_file: Path) -> Path:
    """The local engine's run of the same job file; its run folder."""
    out = root / "local-run"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "fl_jobs",
            "run",
            "--config",
            str(job_file),
            "--output-dir",
            str(out),
        ],
        check=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        cwd=root,
    )
    return out
