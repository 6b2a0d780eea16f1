"""The optional ``approval:`` section of a job config (see fl_jobs/aml for the hook itself).

Lives apart so that the local job config can accept and validate it without importing the
Azure ML code.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ApprovalSpec(BaseModel):
    """Ask a command or an HTTP endpoint before a pipeline is submitted."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: list[str] | None = Field(
        default=None, description="argv of a program that reads the request JSON on stdin"
    )
    url: str | None = Field(default=None, description="http(s) URL that receives a JSON POST")
    timeout_seconds: float = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _exactly_one(self) -> ApprovalSpec:
        if (self.command is None) == (self.url is None):
            raise ValueError("approval needs exactly one of 'command' or 'url'")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"approval url {self.url!r} must start with http:// or https://")
        if self.command is not None and not self.command:
            raise ValueError("approval command must not be empty")
        return self
