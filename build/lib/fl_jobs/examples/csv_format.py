"""The CSV format of the tabular example, read strictly so that no value is taken for
something else without a word.

A CSV the tabular example accepts:

- is UTF-8 text (a leading byte-order mark, as Excel's "CSV UTF-8" writes, is fine);
- starts with a header row that names every column, each name once;
- uses one delimiter throughout: a comma, or else a semicolon or a tab (a comma wins when it
  splits the header and the first rows into the same number of fields);
- writes numbers with ``.`` as the decimal mark and no thousands separators; numbers must be
  finite and fit in float32 (the models' precision).

Decimal commas are refused rather than converted: ``1,234`` is 1.234 in one locale and 1234 in
another, and only the person who wrote the file knows which.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fl_jobs.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

#: Delimiters tried, in order of preference, and how messages name them.
DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab"}
#: Records (header included) the delimiter is detected from.
SNIFF_RECORDS = 51
#: The largest magnitude a float32 holds.
FLOAT32_MAX = float(np.finfo(np.float32).max)
#: A number written with a comma: a decimal comma (``0,5``) or thousands separators (``1,234``).
_COMMA_NUMBER = re.compile(r"[+-]?(?:\d[\d.,]*|[.,]\d[\d.,]*)(?:[eE][+-]?\d+)?")
#: How a CSV should be saved; closes the fixes of format errors.
SAVE_HINT = "save it as UTF-8 with a header row, ',' between fields and '.' as the decimal mark"


@dataclass
class CsvTable:
    """A CSV read into a frame, with what is needed to point at a line of the file."""

    path: Path
    frame: pd.DataFrame
    delimiter: str
    text: str

    def line_of(self, row: int) -> int:
        """The file line holding data row ``row`` (0-based, as in ``frame``); blank lines are
        skipped as the reader skips them."""
        reader = csv.reader(io.StringIO(self.text), delimiter=self.delimiter)
        records = (record for record in reader if record)
        with contextlib.suppress(csv.Error):
            next(records, None)  # the header
            for index, _ in enumerate(records):
                if index == row:
                    return reader.line_num
        return row + 2  # the header, then one line per row


def read_csv_table(path: Path) -> CsvTable:
    """Read ``path`` as described in the module docstring; DataError naming the problem."""
    import pandas as pd

    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise DataError(
            f"cannot read {path}: {exc.strerror} - check the path and its permissions"
        ) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(
            f"{path} is not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}) - save it "
            "as UTF-8 (in Excel: 'CSV UTF-8')"
        ) from None
    if not text.strip():
        raise DataError(f"{path} is empty - {SAVE_HINT}")
    try:
        delimiter = detect_delimiter(text)
        check_header(path, text, delimiter)
    except csv.Error as exc:
        raise DataError(f"cannot read {path} as CSV: {exc} - {SAVE_HINT}") from None
    try:
        frame = pd.read_csv(io.StringIO(text), sep=delimiter)
    except (ValueError, pd.errors.ParserError) as exc:
        detail = str(exc).strip().replace("\n", " ")
        raise DataError(
            f"cannot read {path} as {DELIMITERS[delimiter]}-separated CSV: {detail} - every row "
            "needs one field per header column (a decimal comma in a comma-separated file "
            f"splits a number in two); {SAVE_HINT}"
        ) from None
    return CsvTable(path=Path(path), frame=frame, delimiter=delimiter, text=text)


def detect_delimiter(text: str) -> str:
    """The first delimiter of ``DELIMITERS`` that splits the header into two or more fields and
    every one of the first rows into as many; a comma if none does (the reader then names the
    first row that does not fit)."""
    for delimiter in DELIMITERS:
        reader = csv.reader(io.StringIO(text), delimiter=delimiter)
        records = [r for r in itertools.islice((r for r in reader if r), SNIFF_RECORDS)]
        width = len(records[0]) if records else 0
        if width >= 2 and all(len(r) == width for r in records[1:]):
            return delimiter
    return ","


def check_header(path: Path, text: str, delimiter: str) -> None:
    """Every column has a name, and no name twice (pandas would rename the second ``x.1``
    and take an unnamed column, often a saved row index, for a feature)."""
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = next((r for r in reader if r), [])
    seen: dict[str, int] = {}
    for position, name in enumerate(header, start=1):
        if not name.strip():
            raise DataError(
                f"{path}: column {position} has no name in the header row (a saved row "
                "index?) - name it, or drop it (pandas: to_csv(path, index=False))"
            )
        if name in seen:
            raise DataError(
                f"{path}: column name {name!r} appears twice in the header row (columns "
                f"{seen[name]} and {position}) - give each column its own name"
            )
        seen[name] = position


def check_decimal_marks(table: CsvTable) -> None:
    """Refuse text columns that are really numbers written with commas (decimal commas or
    thousands separators), instead of one-hot encoding each distinct number as a category."""
    import pandas as pd

    for column in table.frame.columns:
        values = table.frame[column]
        if pd.api.types.is_numeric_dtype(values):
            continue
        text = values.dropna().astype(str).str.strip()
        if text.empty:
            continue
        with_comma = text.str.fullmatch(_COMMA_NUMBER) & text.str.contains(",", regex=False)
        plain = pd.to_numeric(text, errors="coerce").notna()
        if with_comma.any() and (with_comma | plain).mean() >= 0.5:
            row = int(text.index[with_comma.to_numpy()][0])
            example = text[row]
            raise DataError(
                f"{table.path}: column {column!r} holds numbers written with a comma, e.g. "
                f"{example!r} on line {table.line_of(row)} (a decimal comma, or a thousands "
                "separator), which would be read as text - save the file with '.' as the "
                "decimal mark and no thousands separators (pandas: to_csv(path, index=False); "
                "Excel: set the decimal separator to '.')"
            )


def check_missing(table: CsvTable) -> None:
    """No missing values (empty fields, NA, NaN): each silo would have to guess them."""
    holes = table.frame.isna()
    columns = [c for c in table.frame.columns if holes[c].any()]
    if not columns:
        return
    where = ", ".join(
        f"{c} (first on line {table.line_of(int(np.flatnonzero(holes[c].to_numpy())[0]))})"
        for c in columns
    )
    raise DataError(
        f"{table.path}: columns with missing values: {where} - fill or drop them before federating"
    )


def check_finite(table: CsvTable) -> None:
    """Numbers are finite and fit in float32: ``inf`` or 1e39 would reach training as inf."""
    import pandas as pd

    for column in table.frame.columns:
        values = table.frame[column]
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            continue
        numbers = values.to_numpy(dtype=np.float64)
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(numbers) | (np.abs(numbers) > FLOAT32_MAX)
        if not bad.any():
            continue
        row = int(np.flatnonzero(bad)[0])
        value = numbers[row]
        count = int(bad.sum())
        more = f" ({count} such values in the column)" if count > 1 else ""
        if np.isfinite(value):
            problem = f"{value:g} is too large for float32 (at most {FLOAT32_MAX:.3g})"
            fix = "rescale the column (e.g. to thousands)"
        else:
            problem = f"{value} is not a finite number"
            fix = "replace it with a finite value or drop the row"
        raise DataError(
            f"{table.path}: column {column!r}, line {table.line_of(row)}: {problem}{more} - {fix}"
        )
