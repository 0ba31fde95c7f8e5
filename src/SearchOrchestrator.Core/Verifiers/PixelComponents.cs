namespace SearchOrchestrator.Verifiers;

/// <summary>
/// 8-connected components of a labelled image: neighbouring pixels (diagonals included) with the same label form one
/// component; pixels labelled below 0 are background. The programmatic judges count objects with it.
/// </summary>
internal static class PixelComponents
{
    /// <summary>Each component's pixel indices (row-major), in raster order of its first pixel.</summary>
    public static List<List<int>> Find(ReadOnlySpan<int> label, int height, int width)
    {
        var components = new List<List<int>>();
        var seen = new bool[label.Length];
        var stack = new Stack<int>();
        for (var start = 0; start < label.Length; start++)
        {
            if (label[start] < 0 || seen[start])
            {
                continue;
            }

            var value = label[start];
            var component = new List<int>();
            seen[start] = true;
            stack.Push(start);
            while (stack.TryPop(out var p))
            {
                component.Add(p);
                int y = p / width, x = p % width;
                for (var dy = -1; dy <= 1; dy++)
                {
                    for (var dx = -1; dx <= 1; dx++)
                    {
                        int ny = y + dy, nx = x + dx;
                        if (ny < 0 || ny >= height || nx < 0 || nx >= width)
                        {
                            continue;
                        }

                        var q = (ny * width) + nx;
                        if (!seen[q] && label[q] == value)
                        {
                            seen[q] = true;
                            stack.Push(q);
                        }
                    }
                }
            }

            components.Add(component);
        }

        return components;
    }
}
