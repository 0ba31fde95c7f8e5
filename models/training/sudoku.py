"""Procedural 9x9 Sudoku: solved grids and puzzles, all a pure function of the numpy Generator passed in.

Cells are numbered row-major 0..80; digits are 1..9 and 0 is a blank (the masked diffusion's mask id).
Solved grids come from a randomized backtracking fill; `augment` then applies validity-preserving
symmetries (digit relabelling, row/column shuffles inside bands and stacks, band/stack shuffles,
transposition) so a small pool of base grids yields an effectively endless training stream.
"""
import numpy as np

CELLS = 81
ROW = np.repeat(np.arange(9), 9)
COL = np.tile(np.arange(9), 9)
BOX = (ROW // 3) * 3 + COL // 3


def peers() -> np.ndarray:
    """[81, 81] bool: True where two cells share a row, a column or a box (a cell is its own peer)."""
    return (ROW[:, None] == ROW[None, :]) | (COL[:, None] == COL[None, :]) | (BOX[:, None] == BOX[None, :])


def solved_grid(rng: np.random.Generator) -> np.ndarray:
    """One uniformly-shuffled backtracking fill, as int64 [81] with digits 1..9."""
    grid = np.zeros(CELLS, np.int64)
    rows = [set() for _ in range(9)]
    cols = [set() for _ in range(9)]
    boxes = [set() for _ in range(9)]
    orders = [rng.permutation(9) + 1 for _ in range(CELLS)]

    def fill(i: int) -> bool:
        if i == CELLS:
            return True
        r, c, b = ROW[i], COL[i], BOX[i]
        for d in orders[i]:
            if d in rows[r] or d in cols[c] or d in boxes[b]:
                continue
            grid[i] = d
            rows[r].add(d); cols[c].add(d); boxes[b].add(d)
            if fill(i + 1):
                return True
            rows[r].discard(d); cols[c].discard(d); boxes[b].discard(d)
        grid[i] = 0
        return False

    fill(0)
    return grid


def augment(grids: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Applies a random Sudoku symmetry to every grid of [B, 81]; each result is still solved."""
    out = np.empty_like(grids)
    for k, g in enumerate(grids):
        g = g.reshape(9, 9)
        relabel = np.concatenate([[0], rng.permutation(9) + 1])
        g = relabel[g]
        rows = np.concatenate([b * 3 + rng.permutation(3) for b in rng.permutation(3)])
        cols = np.concatenate([s * 3 + rng.permutation(3) for s in rng.permutation(3)])
        g = g[rows][:, cols]
        if rng.random() < 0.5:
            g = g.T
        out[k] = g.reshape(-1)
    return out


def violations(grid: np.ndarray) -> int:
    """Number of violated row/column/box constraints (a unit with a repeated digit) of a full grid [81]."""
    g = grid.reshape(9, 9)
    bad = 0
    for i in range(9):
        bad += len(set(g[i])) != 9 or 0 in g[i]
        bad += len(set(g[:, i])) != 9 or 0 in g[:, i]
        box = g[(i // 3) * 3:(i // 3) * 3 + 3, (i % 3) * 3:(i % 3) * 3 + 3].reshape(-1)
        bad += len(set(box)) != 9 or 0 in box
    return bad
