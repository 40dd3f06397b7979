"""Rendering for the CLI: Rich tables for people, JSON for scripts.

Everything a command prints goes through here, so ``--output json`` means the same thing
everywhere: the pydantic ``model_dump(mode="json")`` of the SDK's result, and times in UTC
ISO 8601. Tables show times in the user's local time zone (DESIGN.md 5).
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from enum import Enum, StrEnum
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text


class Format(StrEnum):
    """The values of ``--output``."""

    table = "table"
    json = "json"


def stdout() -> Console:
    # Built per call, not at import: CliRunner and pytest swap sys.stdout between commands.
    return Console(file=sys.stdout, highlight=False)


def stderr() -> Console:
    return Console(file=sys.stderr, highlight=False)


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON types: pydantic models, dataclasses, DataFrames and times."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if hasattr(value, "to_dict") and hasattr(value, "columns"):  # a pandas DataFrame
        # Missing cells (NaN, NaT) become None first; to_json would also round floats.
        cleaned = value.astype(object).where(value.notna(), None)
        return [jsonable(row) for row in cleaned.to_dict(orient="records")]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted(jsonable(v) for v in value)
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN; a missing metric in a frame arrives as NaN
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return jsonable(value.item())
    return value


def print_json(value: Any) -> None:
    # Plain write, not Rich: Rich would wrap long strings and colour the text.
    sys.stdout.write(json.dumps(jsonable(value), indent=2, sort_keys=False) + "\n")


def error_line(message: str, field: str | None = None) -> None:
    """The one red line a failed command prints to stderr."""
    headline = message.strip().splitlines()[0] if message.strip() else "failed"
    suffix = f" (field: {field})" if field and field not in headline else ""
    stderr().print(f"[bold red]error:[/bold red] {escape(headline + suffix)}", soft_wrap=True)


def note(message: str) -> None:
    stderr().print(escape(message), style="dim", soft_wrap=True)


def local_time(value: Any) -> str:
    """A timestamp in the user's local time zone, to the second; '' for none."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if hasattr(value, "to_pydatetime"):  # pandas Timestamp
        value = value.to_pydatetime()
    if isinstance(value, datetime):
        return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def duration(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return ""
    seconds = max((end - start).total_seconds(), 0.0)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def cell(value: Any) -> str | Text:
    """One table cell: floats compact, missing values blank, text escaped, Text as is."""
    if isinstance(value, Text):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    if isinstance(value, datetime) or hasattr(value, "to_pydatetime"):
        return local_time(value)
    if isinstance(value, Mapping):
        # One pair per line: in a narrow column, "a=1, b=2" wraps mid-pair.
        return escape("\n".join(f"{k}={_scalar(v)}" for k, v in value.items()))
    if isinstance(value, list | tuple | set | frozenset):
        return escape(", ".join(str(jsonable(v)) for v in value))
    if isinstance(value, Enum):
        return escape(str(value.value))
    return escape(str(value))


def _scalar(value: Any) -> str:
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.6g}"
    return str(value)


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]],
          *, keep: Sequence[str] = (), header: bool = True) -> Table:
    """A Rich table; columns named in ``keep`` (ids people copy, times) never wrap."""
    cells = [[cell(v) for v in row] for row in rows]
    grid = Table(title=title, title_justify="left", header_style="bold", show_header=header)
    for i, name in enumerate(columns):
        if name in keep:
            widest = max((len(r[i]) for r in cells), default=0)
            grid.add_column(name, no_wrap=True, min_width=max(len(name), widest))
        else:
            grid.add_column(name, overflow="fold")
    for row_cells in cells:
        grid.add_row(*row_cells)
    return grid


def width() -> int:
    """The width of the terminal stdout goes to (``COLUMNS``, else 80 when not a terminal)."""
    return stdout().width


def fitted_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, width: int,
                 keep: Sequence[str] = (), widest: int = 24) -> tuple[Table, list[str]]:
    """A table of as many of ``columns`` as fit in ``width`` characters, one line per row.

    ``columns`` come in order of importance; those named in ``keep`` (ids people copy) are
    always shown whole, the others take their widest cell up to ``widest`` characters and
    are cut with an ellipsis past it. The first column that does not fit is cut narrower
    when the room left still holds its whole header, else left out, and so is every column
    after it. Returns the table and the names of the columns left out.
    """
    cells = [[_one_line(cell(v)) for v in row] for row in rows]
    natural = []
    for i, name in enumerate(columns):
        longest = max([len(name), *(len(_plain(r[i])) for r in cells)])
        natural.append(longest if name in keep else min(longest, max(widest, len(name))))
    chosen: list[tuple[int, int]] = []
    used = 1  # the table's left edge; each column adds its padding and right edge
    full = False  # once a column did not fit, no less important one takes its place
    for i, name in enumerate(columns):
        room = width - used - 3
        if name in keep or (not full and natural[i] <= room):
            chosen.append((i, natural[i]))
            used += natural[i] + 3
        elif not full:
            full = True
            if room >= max(8, len(name)):
                chosen.append((i, room))
                used = width
    shown = {i for i, _ in chosen}
    grid = Table(title_justify="left", header_style="bold")
    for i, size in chosen:
        grid.add_column(columns[i], no_wrap=True, overflow="ellipsis", min_width=size,
                        max_width=size)
    for row_cells in cells:
        grid.add_row(*(row_cells[i] for i, _ in chosen))
    return grid, [name for i, name in enumerate(columns) if i not in shown]


def _plain(value: str | Text) -> str:
    return value.plain if isinstance(value, Text) else Text.from_markup(value).plain


def _one_line(value: str | Text) -> str | Text:
    # A cell in a fitted table is one line: a mapping's pairs go side by side.
    if isinstance(value, Text):
        return value
    return value.replace("\n", ", ")


def show(*renderables: Any) -> None:
    console = stdout()
    for item in renderables:
        console.print(item)


def key_values(title: str | None, values: Mapping[str, Any], *, sort: bool = True) -> Table:
    items = sorted(values.items()) if sort else list(values.items())
    return table(title, ["key", "value"], items, keep=["key"], header=False)


_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float]) -> str:
    """A one-line chart of a metric series, scaled between its min and max."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return ""
    low, high = min(finite), max(finite)
    span = high - low
    chars = []
    for v in values:
        if not math.isfinite(v):
            chars.append(" ")
        elif span == 0:
            chars.append(_BARS[len(_BARS) // 2])
        else:
            chars.append(_BARS[round((v - low) / span * (len(_BARS) - 1))])
    return "".join(chars)


def downsample(values: Sequence[float], width: int = 40) -> list[float]:
    """At most ``width`` points, each the mean of its bucket, so long series fit a line."""
    if len(values) <= width:
        return list(values)
    out = []
    for i in range(width):
        bucket = values[i * len(values) // width:(i + 1) * len(values) // width]
        out.append(sum(bucket) / len(bucket))
    return out
