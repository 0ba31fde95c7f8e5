using System.Text;

namespace SearchOrchestrator.Verifiers;

/// <summary>The result of checking a 9×9 grid.</summary>
/// <param name="Violations">Violated constraints: rows, columns and boxes that do not hold 1..9 exactly once, plus givens the grid changed.</param>
/// <param name="Solved">True when nothing is violated: a valid, complete solution of the puzzle.</param>
public readonly record struct SudokuCheck(int Violations, bool Solved);

/// <summary>
/// 9×9 Sudoku: cells row-major 0..80, digits 1..9, 0 for a blank. Puzzle text is 81 characters of <c>1</c>–<c>9</c>
/// with <c>.</c> or <c>0</c> for a blank. Generates seeded solved grids and unique-solution puzzles for the bench.
/// </summary>
public static class Sudoku
{
    /// <summary>Cells in a grid.</summary>
    public const int Cells = 81;

    /// <summary>Parses puzzle text into digits (0 = blank).</summary>
    /// <exception cref="InvalidRequestException">Wrong length or a character other than 1–9, '.' and '0'.</exception>
    public static int[] Parse(string puzzle, string field = "puzzle")
    {
        ArgumentNullException.ThrowIfNull(puzzle);
        if (puzzle.Length != Cells)
        {
            throw new InvalidRequestException(field, $"a Sudoku puzzle has exactly {Cells} characters (row by row, '.' or '0' for a blank), got {puzzle.Length}.");
        }

        var grid = new int[Cells];
        for (var i = 0; i < Cells; i++)
        {
            var c = puzzle[i];
            grid[i] = c switch
            {
                '.' or '0' => 0,
                >= '1' and <= '9' => c - '0',
                _ => throw new InvalidRequestException(field, $"character '{c}' at position {i} is not a digit 1-9 or a blank ('.' or '0')."),
            };
        }

        return grid;
    }

    /// <summary>The puzzle text of a grid (<c>.</c> for blanks).</summary>
    public static string Format(IReadOnlyList<int> grid)
    {
        ArgumentNullException.ThrowIfNull(grid);
        return string.Concat(grid.Select(d => d is >= 1 and <= 9 ? (char)('0' + d) : '.'));
    }

    /// <summary>Counts the violated row, column and box constraints of <paramref name="cells"/> (digits as floats) and, when a puzzle is given, the givens it changed.</summary>
    public static SudokuCheck Check(ReadOnlySpan<float> cells, IReadOnlyList<int>? puzzle = null)
    {
        if (cells.Length != Cells)
        {
            throw new ArgumentException($"A Sudoku grid has {Cells} cells, got {cells.Length}.", nameof(cells));
        }

        Span<int> grid = stackalloc int[Cells];
        for (var i = 0; i < Cells; i++)
        {
            grid[i] = (int)cells[i];
        }

        var violations = 0;
        for (var unit = 0; unit < 27; unit++)
        {
            var seen = 0;
            for (var j = 0; j < 9; j++)
            {
                var d = grid[UnitCell(unit, j)];
                if (d is >= 1 and <= 9)
                {
                    seen |= 1 << d;
                }
            }

            if (seen != 0x3FE)
            {
                violations++;
            }
        }

        if (puzzle is not null)
        {
            for (var i = 0; i < Cells; i++)
            {
                if (puzzle[i] != 0 && puzzle[i] != grid[i])
                {
                    violations++;
                }
            }
        }

        return new SudokuCheck(violations, violations == 0);
    }

    /// <summary>
    /// Counts the constraints <paramref name="cells"/> already breaks, blanks (0) being undecided: rows, columns and boxes
    /// where a digit appears twice, blanks whose row, column and box already hold all nine digits (no digit can fill
    /// them any more), plus givens of <paramref name="puzzle"/> filled with another digit. On a complete grid it equals
    /// <see cref="Check"/>'s violations (a full unit misses a digit exactly when it repeats one).
    /// </summary>
    public static int Conflicts(ReadOnlySpan<float> cells, IReadOnlyList<int>? puzzle = null)
    {
        if (cells.Length != Cells)
        {
            throw new ArgumentException($"A Sudoku grid has {Cells} cells, got {cells.Length}.", nameof(cells));
        }

        var conflicts = 0;
        Span<int> used = stackalloc int[27];
        for (var unit = 0; unit < 27; unit++)
        {
            var repeated = false;
            for (var j = 0; j < 9; j++)
            {
                var d = (int)cells[UnitCell(unit, j)];
                if (d is >= 1 and <= 9)
                {
                    repeated |= (used[unit] & (1 << d)) != 0;
                    used[unit] |= 1 << d;
                }
            }

            conflicts += repeated ? 1 : 0;
        }

        for (var i = 0; i < Cells; i++)
        {
            var d = (int)cells[i];
            if (d is >= 1 and <= 9)
            {
                conflicts += puzzle is not null && puzzle[i] != 0 && puzzle[i] != d ? 1 : 0;
            }
            else if ((used[i / 9] | used[9 + (i % 9)] | used[18 + (i / 27 * 3) + (i % 9 / 3)]) == 0x3FE)
            {
                conflicts++;
            }
        }

        return conflicts;
    }

    /// <summary>A grid as nine lines with box separators; blanks as '.'.</summary>
    public static string Render(ReadOnlySpan<float> cells)
    {
        var text = new StringBuilder();
        for (var r = 0; r < 9; r++)
        {
            if (r is 3 or 6)
            {
                text.AppendLine("------+-------+------");
            }

            for (var c = 0; c < 9; c++)
            {
                if (c is 3 or 6)
                {
                    text.Append("| ");
                }

                var d = (int)cells[(r * 9) + c];
                text.Append(d is >= 1 and <= 9 ? (char)('0' + d) : '.').Append(c == 8 ? string.Empty : " ");
            }

            text.AppendLine();
        }

        return text.ToString();
    }

    /// <summary>A uniformly shuffled solved grid from a randomized backtracking fill.</summary>
    public static int[] SolvedGrid(Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        var grid = new int[Cells];
        Fill(grid, 0, random);
        return grid;
    }

    /// <summary>
    /// A puzzle with a unique solution and about <paramref name="givens"/> givens: blanks are dug from
    /// <paramref name="solution"/> in random order, skipping any whose removal would admit a second solution.
    /// </summary>
    public static int[] Dig(int[] solution, int givens, Random random)
    {
        ArgumentNullException.ThrowIfNull(solution);
        ArgumentNullException.ThrowIfNull(random);
        var puzzle = (int[])solution.Clone();
        var order = Enumerable.Range(0, Cells).OrderBy(_ => random.Next()).ToArray();
        var left = Cells;
        foreach (var cell in order)
        {
            if (left <= givens)
            {
                break;
            }

            var digit = puzzle[cell];
            puzzle[cell] = 0;
            if (CountSolutions((int[])puzzle.Clone(), 2) != 1)
            {
                puzzle[cell] = digit;
                continue;
            }

            left--;
        }

        return puzzle;
    }

    /// <summary>Counts solutions of <paramref name="grid"/> (0 = blank), stopping at <paramref name="limit"/>.</summary>
    public static int CountSolutions(int[] grid, int limit)
    {
        ArgumentNullException.ThrowIfNull(grid);
        var best = -1;
        var bestOptions = 0;
        var bestCount = 10;
        for (var i = 0; i < Cells; i++)
        {
            if (grid[i] != 0)
            {
                continue;
            }

            var options = Options(grid, i);
            var count = System.Numerics.BitOperations.PopCount((uint)options);
            if (count < bestCount)
            {
                (best, bestOptions, bestCount) = (i, options, count);
                if (count == 0)
                {
                    return 0;
                }
            }
        }

        if (best < 0)
        {
            return 1;
        }

        var found = 0;
        for (var d = 1; d <= 9 && found < limit; d++)
        {
            if ((bestOptions & (1 << d)) != 0)
            {
                grid[best] = d;
                found += CountSolutions(grid, limit - found);
            }
        }

        grid[best] = 0;
        return found;
    }

    private static bool Fill(int[] grid, int cell, Random random)
    {
        if (cell == Cells)
        {
            return true;
        }

        var options = Options(grid, cell);
        foreach (var d in Enumerable.Range(1, 9).OrderBy(_ => random.Next()).ToArray())
        {
            if ((options & (1 << d)) == 0)
            {
                continue;
            }

            grid[cell] = d;
            if (Fill(grid, cell + 1, random))
            {
                return true;
            }
        }

        grid[cell] = 0;
        return false;
    }

    /// <summary>Bit d set when digit d may go in <paramref name="cell"/>.</summary>
    private static int Options(int[] grid, int cell)
    {
        int row = cell / 9, col = cell % 9, box = ((row / 3) * 3) + (col / 3);
        var used = 0;
        for (var j = 0; j < 9; j++)
        {
            used |= 1 << grid[UnitCell(row, j)];
            used |= 1 << grid[UnitCell(9 + col, j)];
            used |= 1 << grid[UnitCell(18 + box, j)];
        }

        return ~used & 0x3FE;
    }

    /// <summary>Cell j of unit u: rows 0–8, columns 9–17, boxes 18–26.</summary>
    private static int UnitCell(int unit, int j) => unit switch
    {
        < 9 => (unit * 9) + j,
        < 18 => (j * 9) + (unit - 9),
        _ => ((((unit - 18) / 3 * 3) + (j / 3)) * 9) + ((unit - 18) % 3 * 3) + (j % 3),
    };
}
