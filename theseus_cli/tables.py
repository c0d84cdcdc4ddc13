"""Tables that fit the terminal: no word is ever cut.

A rich table squeezed into a narrow terminal cuts words to a few letters (``teac…``).
:func:`fitted_table` instead gives each column at least the width of its longest word
(cells wrap only at spaces), leaves out optional columns, least important first, until
the table fits, and, when even the essential columns do not fit, prints one block per
row (``header: value`` lines). It says which columns it left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text


@dataclass(frozen=True)
class Column:
    """One column: its ``header``, ``justify`` (``left`` or ``right``) and ``drop`` (None:
    essential, never left out; else left out before columns of a lower number)."""

    header: str
    justify: str = "left"
    drop: float | None = None


def _longest_word(text: str) -> int:
    return max((len(w) for w in str(text).split()), default=0)


def _needed(columns: Sequence[Column], rows: Sequence[Sequence[str]], keep: list[int]) -> int:
    """Terminal cells a rich table of the ``keep`` columns needs at least: a border, then
    per column its longest word plus two cells of padding and one of border."""
    return 1 + sum(max(_longest_word(columns[i].header),
                       *(_longest_word(r[i]) for r in rows)) + 3 for i in keep)


def _widths(columns: Sequence[Column], rows: Sequence[Sequence[str]], keep: list[int],
            width: int) -> list[int | None]:
    """Fixed text widths of the ``keep`` columns when their natural widths (longest cell)
    do not fit ``width``: each its longest word, the cells to spare shared out to the
    columns that wrap most, widest first; None (rich decides) when everything fits. Rich
    alone shrinks only the widest columns, and crops the table when that one cannot wrap
    (a long version label)."""
    def longest(i: int, measure) -> int:
        return max(measure(columns[i].header), *(measure(r[i]) for r in rows))

    natural = [longest(i, lambda t: len(str(t))) for i in keep]
    if 1 + sum(n + 3 for n in natural) <= width:
        return [None] * len(keep)
    sizes = [longest(i, _longest_word) for i in keep]
    spare = width - (1 + sum(n + 3 for n in sizes))
    while spare > 0:
        gaps = [n - s for n, s in zip(natural, sizes, strict=False)]
        j = max(range(len(keep)), key=lambda k: gaps[k])
        if gaps[j] <= 0:
            break
        step = min(spare, gaps[j])
        sizes[j] += step
        spare -= step
    return sizes


def fitted_table(title: str, columns: Sequence[Column], rows: Sequence[Sequence[str]],
                 width: int, full_table: str = "") -> RenderableType:
    """A table of ``rows`` (one string per column) that fits ``width`` terminal cells.

    Args:
        full_table: where the whole table can be read (e.g. a Markdown file), named in
            the note on left-out columns.

    Returns:
        A rich renderable: the table (with a note when columns were left out), or, when
        the essential columns alone are too wide, one block of ``header: value`` lines per
        row.
    """
    keep = list(range(len(columns)))
    optional = sorted((c.drop, i) for i, c in enumerate(columns) if c.drop is not None)
    dropped: list[int] = []
    while _needed(columns, rows, keep) > width and optional:
        _, i = optional.pop()
        keep.remove(i)
        dropped.append(i)
    where = f"; the full table: {full_table}" if full_table else ""
    if _needed(columns, rows, keep) > width:  # one block per row
        blocks: list[RenderableType] = [Text(title, style="italic")]
        for r in rows:
            lines = [f"{columns[i].header}: {r[i]}" for i in range(len(columns))]
            blocks.append(Text("\n".join(lines) + "\n"))
        if full_table:
            blocks.append(Text(f"(too narrow for a table{where})", style="dim"))
        return Group(*blocks)
    table = Table(title=title)
    for i, cells in zip(keep, _widths(columns, rows, keep, width), strict=False):
        column = columns[i]
        table.add_column(column.header, justify=column.justify, overflow="fold", width=cells)
    for r in rows:
        table.add_row(*(r[i] for i in keep))
    if not dropped:
        return table
    left_out = ", ".join(columns[i].header for i in sorted(dropped))
    return Group(table, Text(f"(left out at this width: {left_out}{where})", style="dim"))
