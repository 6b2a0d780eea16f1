"""An example's own settings: the job file's ``example`` section (``example: {name: tabular,
data: rows.csv, target: label}``, or flat ``example: tabular`` with ``data``, ``target``...).

Each example declares its settings model next to its loader (``Example.settings``), so an
example with a setting of its own is one file: the job config's ``example`` section, the
flat keys and the ``run`` command's options are generated from these models. A setting that
another example reads is refused for this one rather than ignored.
"""

from __future__ import annotations

from pathlib import Path

from fl_jobs.examples.strict_model import StrictModel, setting


class ExampleSettings(StrictModel):
    """What every example reads: its name and the training subset's size."""

    name: str = setting(
        "digits",
        key="example",
        short="-e",
        help="Example",
    )
    max_train_samples: int | None = setting(
        None,
        ge=1,
        help="Use a seeded subset of the training data",
        default_text="(default: all)",
    )

    def rows_file(self) -> Path | None:
        """The file of raw input rows the model reads, where the user gave one (a CSV); the
        exported model's input example is taken from it."""
        return None


class FolderSettings(ExampleSettings):
    """An example whose files are read from a folder (never downloaded)."""

    data_dir: Path | None = setting(
        None,
        help="Folder with the example's files",
        default_text="(default: $FL_SANDBOX_DATA/<example>, else ../shared/data/<example> next "
        "to the repository)",
    )


class HeldOutSettings(ExampleSettings):
    """An example without an official test set: a seeded share is held out."""

    test_fraction: float = setting(
        0.2, gt=0, lt=1, help="Held-out test share when there is no official test set"
    )
