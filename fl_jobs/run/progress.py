"""Round-by-round progress: a rich progress bar in a terminal, plain lines otherwise."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from fl_jobs.cli.plurals import count
from fl_jobs.local.federation import RoundRecord
from fl_jobs.local.prepare import PreparedJob


class RoundProgress:
    """Context manager fed one :class:`RoundRecord` per round."""

    def __init__(self, console: Console, prepared: PreparedJob, *, completed: int = 0) -> None:
        self.console = console
        self.rounds = prepared.config.federation.rounds
        self.completed = completed
        self.metric = prepared.example.metric_name
        sizes = (
            f"{sum(prepared.silo_sizes())} samples in all, per silo masked by secure aggregation"
            if prepared.config.secure_aggregation.enabled
            else "samples " + ", ".join(str(n) for n in prepared.silo_sizes())
        )
        self.header = (
            f"{prepared.config.example.name}: {len(prepared.partitions)} silos "
            f"({prepared.config.federation.partition}; {sizes}), {count(self.rounds, 'round')}"
        )
        if prepared.config.federation.async_buffer is not None:
            self.header += (
                f", asynchronous (FedBuff: each round folds "
                f"{count(prepared.config.federation.async_buffer, 'arriving update')})"
            )
        if completed:
            self.header += f"; resuming after round {completed}"
        self._bar: Progress | None = None
        self._task: int | None = None

    def __enter__(self) -> RoundProgress:
        self.console.print(self.header, soft_wrap=True, markup=False, highlight=False)
        if self.console.is_terminal:
            self._bar = Progress(
                TextColumn("[bold]federating"),
                BarColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=self.console,
                transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task(
                f"round {self.completed}", total=self.rounds, completed=self.completed
            )
        return self

    def update(self, record: RoundRecord) -> None:
        value = record.global_metrics[self.metric]
        text = f"round {record.round}/{self.rounds}  test {self.metric} {value:.4f}"
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, advance=1, description=text)  # type: ignore[arg-type]
            # Above the bar, so that every round's line stays on screen after it.
            self._bar.console.print(f"{text}  ({record.seconds:.2f} s)", highlight=False)
        else:
            self.console.print(f"{text}  ({record.seconds:.2f} s)", highlight=False)

    def note(self, text: str) -> None:
        if self._bar is not None:
            self._bar.console.print(text, markup=False, highlight=False)
        else:
            self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
