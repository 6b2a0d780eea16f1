"""The examples by name: a new example is its own file plus one line here."""

from __future__ import annotations

from fl_jobs.errors import JobConfigError
from fl_jobs.examples.base import Example
from fl_jobs.examples.digits import DigitsExample
from fl_jobs.examples.mnist import MnistExample
from fl_jobs.examples.tabular import TabularExample
from fl_jobs.examples.turbofan import TurbofanExample

EXAMPLES: dict[str, type[Example]] = {
    cls.name: cls for cls in (DigitsExample, MnistExample, TurbofanExample, TabularExample)
}


def get_example(name: str) -> Example:
    """A fresh instance of the example called ``name``."""
    try:
        return EXAMPLES[name]()
    except KeyError:
        raise JobConfigError(
            f"unknown example {name!r}; choose one of {', '.join(EXAMPLES)}"
        ) from None
