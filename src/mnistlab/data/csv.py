"""Label-first CSV files (``label,pixel0,...,pixel783``): read them fast, report the first bad cell
exactly (``file:line: column``), and write them without a Python loop per value.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..files import atomic_write
from .idx import PIXELS, read_bytes

COLUMNS = 1 + PIXELS  # label, then pixel0..pixel783 (Kaggle's names)
CHUNK = 4096  # CSV rows parsed / formatted per block


def _cells(line: str) -> list[str]:
    """A line's cells, quotes removed (``"5"`` is the number 5, as spreadsheets write it)."""
    return next(csv.reader([line]), [])


def _is_number(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False


def _column(j: int) -> str:
    return f"column {j + 1} ({'label' if j == 0 else f'pixel{j - 1}'})"


def _scan(path: Path, numbered: list[tuple[int, str]]) -> None:
    """Slow path: find and raise the first bad cell among (line number, line) pairs."""
    for lineno, line in numbered:
        cells = _cells(line)
        if len(cells) != COLUMNS:
            got = len(cells)
            raise InputError(f"{path}:{lineno}: expected {COLUMNS} columns (label + {PIXELS} pixels), got {got}")
        for j, cell in enumerate(cells):
            try:
                value = float(cell)
            except ValueError:
                raise InputError(f"{path}:{lineno}: {_column(j)}: {cell.strip()!r} is not a number") from None
            top = 9 if j == 0 else 255
            if not value.is_integer():
                raise InputError(f"{path}:{lineno}: {_column(j)}: {cell.strip()} is not a whole number")
            if not 0 <= value <= top:
                raise InputError(f"{path}:{lineno}: {_column(j)}: {cell.strip()} is outside 0..{top}")


def _parse_block(lines: list[str]) -> np.ndarray | None:
    """Fast path: the block as a (rows, 785) uint8 array, or None if anything is off (then `_scan` says what)."""
    text = "\n".join(lines)
    for dtype in (np.int16, np.float64):  # integers first (fast); whole-number floats such as "0.0" also pass
        try:
            block = np.loadtxt(io.StringIO(text), delimiter=",", dtype=dtype, comments=None, ndmin=2,
                               quotechar='"')
        except ValueError:
            continue
        if block.shape[1] != COLUMNS or (dtype is np.float64 and not np.all(block == np.floor(block))):
            return None
        if block.min() < 0 or block[:, 0].max() > 9 or block[:, 1:].max() > 255:
            return None
        return block.astype(np.uint8)
    return None


def load_csv(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read a label-first CSV as uint8 images (n, 784) and labels (n,).

    Each row is label (0..9) then 784 pixels (0..255), comma-separated. The first line is a header (e.g. Kaggle's
    ``label,pixel0,...,pixel783``) when none of its cells is a number, so no row of data is ever taken for one.
    Values are integers; whole-number floats such as ``255.0`` are also accepted, and any cell may be quoted
    (``"5"``, as spreadsheets export). LF, CRLF or CR line endings, a final newline or not, a UTF-8 byte-order mark,
    and blank lines (skipped) are all fine; the file may be gzipped. Errors name ``file:line`` (1-based, header
    included) and the column.
    """
    path = Path(path)
    try:
        text = read_bytes(path).decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not a UTF-8 text file (bad byte at offset {e.start})") from None
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    numbered = [(i + 1, line) for i, line in enumerate(lines) if line.strip()]  # blank lines are skipped
    if not numbered:
        raise InputError(f"{path}: empty file, no data rows")
    first = _cells(numbered[0][1])
    if not any(_is_number(cell) for cell in first):  # a header such as Kaggle's label,pixel0,...,pixel783
        if len(first) != COLUMNS:
            raise InputError(f"{path}:{numbered[0][0]}: header has {len(first)} columns, expected {COLUMNS}")
        numbered = numbered[1:]
        if not numbered:
            raise InputError(f"{path}: only a header line, no data rows")
    blocks = []
    for start in range(0, len(numbered), CHUNK):
        chunk = numbered[start : start + CHUNK]
        block = _parse_block([line for _, line in chunk])
        if block is None:
            _scan(path, chunk)
            raise InputError(f"{path}:{chunk[0][0]}-{chunk[-1][0]}: cannot parse these lines as CSV")
        blocks.append(block)
    table = np.concatenate(blocks)
    return np.ascontiguousarray(table[:, 1:]), table[:, 0].copy()


def _csv_rows(images: np.ndarray, labels: np.ndarray) -> bytes:
    """Format rows as 'label,p0,...,p783\\n' without a Python loop per value (values are 0..255)."""
    table = np.column_stack((labels, images)).astype(np.int32)
    digits = 1 + (table >= 10) + (table >= 100)
    ends = np.cumsum(digits.ravel() + 1)  # index just past each value's separator
    out = np.empty(int(ends[-1]), np.uint8)
    sep = ends - 1
    out[sep] = ord(",")
    out[sep[COLUMNS - 1 :: COLUMNS]] = ord("\n")
    flat, nd = table.ravel(), digits.ravel()
    out[sep - 1] = 48 + flat % 10
    two, three = nd >= 2, nd == 3
    out[sep[two] - 2] = 48 + flat[two] // 10 % 10
    out[sep[three] - 3] = 48 + flat[three] // 100
    return out.tobytes()


def write_csv(target: Path, images: np.ndarray, labels: np.ndarray) -> None:
    def write(tmp):
        with open(tmp, "wb") as f:
            for start in range(0, len(labels), CHUNK):
                f.write(_csv_rows(images[start : start + CHUNK], labels[start : start + CHUNK]))

    atomic_write(target, write)
