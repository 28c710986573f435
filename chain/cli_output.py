"""How every ``latent`` command prints a table: one helper, so output reads well both on a
terminal and in a pipe.

On a terminal a table is drawn by rich (boxes, colours, fitted to the window). Anywhere else
(a pipe, a file, ``watch``, CI logs) rich would still draw box characters and, at its default
80 columns, truncate headers (``hot…``) and wrap rows; scripts want none of that. There the
table is printed as plain text instead: a header line, one line per row, columns padded and
separated by two spaces, no box characters, no truncation, no wrapping, the title (if any) on
its own line first. Cells keep their text (rich markup is stripped).
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

_SEPARATOR = "  "


def _plain(cell: object) -> str:
    if isinstance(cell, Text):
        return cell.plain
    text = str(cell)
    try:
        return Text.from_markup(text).plain
    except Exception:  # noqa: BLE001 - not markup after all (e.g. "[x"): keep it as written
        return text


def plain_table_lines(table: Table) -> list[str]:
    """``table`` as plain text lines (see the module doc)."""
    columns = [[_plain(c.header), *(_plain(cell) for cell in c.cells)] for c in table.columns]
    if not columns:
        return []
    widths = [max(len(line) for line in column) for column in columns]
    lines: list[str] = []
    if table.title:
        lines.append(_plain(table.title))
    for row in range(len(columns[0])):
        cells = [column[row] if row < len(column) else "" for column in columns]
        # right-justified columns (numbers) stay right-justified; the last is not padded
        padded = [
            cell.rjust(width) if column.justify == "right" else cell.ljust(width)
            for cell, width, column in zip(cells, widths, table.columns, strict=True)
        ]
        lines.append(_SEPARATOR.join(padded).rstrip())
    return lines


def cli_console(*, stderr: bool = False) -> Console:
    """The console every command prints through: lines are never wrapped (``soft_wrap``),
    so a long one-liner (an address, a URL) stays one line in a pipe or at 80 columns."""
    return Console(stderr=stderr, soft_wrap=True)


def address_cell(address: str, console: Console) -> str:
    """An address in a table: shortened (``0x12345678…``) on a terminal, whole in a pipe
    (where a script may look it up)."""
    return address[:10] + "…" if console.is_terminal else address


def print_table(table: Table, console: Console | None = None) -> None:
    """Print ``table``: drawn by rich on a terminal, plain text elsewhere."""
    console = console or cli_console()
    if console.is_terminal:
        console.print(table)
        return
    for line in plain_table_lines(table):
        console.file.write(line + "\n")
    console.file.flush()


__all__ = ["address_cell", "cli_console", "plain_table_lines", "print_table"]
