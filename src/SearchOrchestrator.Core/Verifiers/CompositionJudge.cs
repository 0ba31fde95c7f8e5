using SearchOrchestrator.Tensors;

namespace SearchOrchestrator.Verifiers;

/// <summary>One group of a compositional caption: <see cref="Count"/> objects of one colour and shape.</summary>
public sealed record CompositionGroup(int Count, string Color, string Shape);

/// <summary>How far an image is from a caption, as <see cref="CompositionJudge"/> sees it.</summary>
public sealed record CompositionVerdict
{
    /// <summary>The caption's groups, in caption order.</summary>
    public required IReadOnlyList<CompositionGroup> Wanted { get; init; }

    /// <summary>The objects found, grouped by (colour, shape), ordered by colour then shape as the palette lists them.</summary>
    public required IReadOnlyList<CompositionGroup> Found { get; init; }

    /// <summary>The sum over every (colour, shape) of |found − wanted|; 0 when the image matches.</summary>
    public required int Distance { get; init; }

    /// <summary>True when every (colour, shape) has exactly the caption's count and nothing else is drawn.</summary>
    public bool Match => Distance == 0;

    /// <summary>The count axis: the total number of objects is the caption's.</summary>
    public required bool CountMatches { get; init; }

    /// <summary>The colour axis: each colour has the caption's number of objects, whatever their shapes.</summary>
    public required bool ColorMatches { get; init; }

    /// <summary>The shape axis: each shape has the caption's number of objects, whatever their colours.</summary>
    public required bool ShapeMatches { get; init; }
}

/// <summary>
/// The programmatic compositional judge of the <c>shapes-t2i</c> family: parses a caption such as "three red
/// circles and two blue squares" into groups, segments the image's objects by colour (8-connected components of
/// pixels whose nearest palette colour is the same), classifies each object's shape from its pixels and counts per
/// (colour, shape). As a verifier it scores −<see cref="CompositionVerdict.Distance"/> for the prompt, so a matching
/// image scores 0. It judges accuracy independently of any learned model; its Python twin,
/// <c>models/training/compositions.py</c>, uses the same palette and thresholds.
/// </summary>
public sealed class CompositionJudge : IVerifier
{
    /// <summary>The registered name of this verifier.</summary>
    public const string VerifierName = "composition-judge";

    /// <summary>A pixel is an object pixel when its brightest channel, in [0, 1], reaches this.</summary>
    public const float Foreground = 0.4f;

    /// <summary>Components with fewer pixels are specks, not objects.</summary>
    public const int MinArea = 4;

    /// <summary>A component filling at least this share of its bounding box is a square.</summary>
    public const float SquareFill = 0.92f;

    /// <summary>A component whose top rows hold less than this share of its top and bottom rows' pixels is a triangle (apex up).</summary>
    public const float TriangleTop = 0.38f;

    private static readonly string[] Numbers = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine"];

    /// <summary>The colour words and their RGB values (0..255), as the data generator draws them.</summary>
    public static IReadOnlyList<(string Name, byte R, byte G, byte B)> Palette { get; } =
    [
        ("red", 220, 40, 40),
        ("green", 40, 200, 60),
        ("blue", 50, 90, 235),
        ("yellow", 230, 210, 40),
    ];

    /// <summary>The shape words (singular); captions use the plural ("circles") for counts above one.</summary>
    public static IReadOnlyList<string> Shapes { get; } = ["circle", "square", "triangle"];

    /// <inheritdoc />
    public string Name => VerifierName;

    /// <summary>
    /// Parses "&lt;number&gt; &lt;colour&gt; &lt;shape&gt;" groups joined by commas and a final "and", e.g. "two red circles,
    /// one blue square and four green triangles". Case and extra spaces do not matter.
    /// </summary>
    /// <exception cref="InvalidRequestException">A word is not understood (the message names it and its position), a group is incomplete, or a (colour, shape) is named twice.</exception>
    public static IReadOnlyList<CompositionGroup> ParseCaption(string caption)
    {
        ArgumentNullException.ThrowIfNull(caption);
        var words = caption.ToLowerInvariant().Replace(",", " , ", StringComparison.Ordinal)
            .Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        var groups = new List<CompositionGroup>();
        var i = 0;
        while (true)
        {
            if (i + 3 > words.Length)
            {
                throw Invalid($"'{caption}' ends early: each group is '<number> <colour> <shape>', e.g. 'three red circles'.");
            }

            var count = Array.IndexOf(Numbers, words[i]) + 1;
            if (count == 0)
            {
                throw Invalid($"word {i + 1} '{words[i]}' is not a number ({string.Join(", ", Numbers)}).");
            }

            var color = words[i + 1];
            if (!Palette.Any(p => p.Name == color))
            {
                throw Invalid($"word {i + 2} '{color}' is not a colour ({string.Join(", ", Palette.Select(p => p.Name))}).");
            }

            var shape = Shapes.FirstOrDefault(s => words[i + 2] == s || words[i + 2] == s + "s");
            if (shape is null)
            {
                throw Invalid($"word {i + 3} '{words[i + 2]}' is not a shape ({string.Join(", ", Shapes)}).");
            }

            if (groups.Any(g => g.Color == color && g.Shape == shape))
            {
                throw Invalid($"word {i + 3}: '{color} {words[i + 2]}' is named twice.");
            }

            groups.Add(new CompositionGroup(count, color, shape));
            i += 3;
            if (i == words.Length)
            {
                return groups;
            }

            if (words[i] is not ("," or "and"))
            {
                throw Invalid($"word {i + 1} '{words[i]}' should be ',' or 'and' between groups.");
            }

            i++;
        }

        static InvalidRequestException Invalid(string message) => new("prompt", $"verifier '{VerifierName}' cannot read the prompt: {message}");
    }

    /// <summary>Every object of an RGB image <c>[3, height, width]</c> in [-1, 1], as (colour, shape), in raster order of their first pixel.</summary>
    public static IReadOnlyList<(string Color, string Shape)> FindObjects(ReadOnlySpan<float> image, int height, int width)
    {
        var pixels = height * width;
        if (image.Length != 3 * pixels)
        {
            throw new ArgumentException($"An RGB image of {height}x{width} has {3 * pixels} values, got {image.Length}.", nameof(image));
        }

        var label = new int[pixels];
        for (var p = 0; p < pixels; p++)
        {
            float r = Unit(image[p]), g = Unit(image[pixels + p]), b = Unit(image[(2 * pixels) + p]);
            label[p] = Math.Max(r, Math.Max(g, b)) >= Foreground ? NearestColor(r, g, b) : -1;
        }

        var found = new List<(string, string)>();
        foreach (var component in PixelComponents.Find(label, height, width))
        {
            if (component.Count >= MinArea)
            {
                found.Add((Palette[label[component[0]]].Name, Classify(component, width)));
            }
        }

        return found;
    }

    /// <summary>Judges an RGB image <c>[3, height, width]</c> in [-1, 1] against a caption.</summary>
    /// <exception cref="InvalidRequestException">The caption cannot be parsed (see <see cref="ParseCaption"/>).</exception>
    public static CompositionVerdict Judge(ReadOnlySpan<float> image, int height, int width, string caption)
    {
        var wanted = ParseCaption(caption);
        var objects = FindObjects(image, height, width);
        var found = new List<CompositionGroup>();
        var distance = 0;
        foreach (var (color, _, _, _) in Palette)
        {
            foreach (var shape in Shapes)
            {
                var have = objects.Count(o => o.Color == color && o.Shape == shape);
                var want = wanted.FirstOrDefault(g => g.Color == color && g.Shape == shape)?.Count ?? 0;
                distance += Math.Abs(have - want);
                if (have > 0)
                {
                    found.Add(new CompositionGroup(have, color, shape));
                }
            }
        }

        return new CompositionVerdict
        {
            Wanted = wanted,
            Found = found,
            Distance = distance,
            CountMatches = found.Sum(g => g.Count) == wanted.Sum(g => g.Count),
            ColorMatches = Palette.All(p => SumWhere(found, g => g.Color == p.Name) == SumWhere(wanted, g => g.Color == p.Name)),
            ShapeMatches = Shapes.All(s => SumWhere(found, g => g.Shape == s) == SumWhere(wanted, g => g.Shape == s)),
        };
    }

    /// <summary>Judges an RGB sample <c>[3, H, W]</c> against a caption.</summary>
    public CompositionVerdict Judge(ReadOnlySpan<float> sample, SampleShape shape, string caption)
    {
        RequireRgbImage(shape);
        return Judge(sample, shape.Dimensions[1], shape.Dimensions[2], caption);
    }

    /// <inheritdoc />
    public Task<float[]> ScoreAsync(VerifierBatch batch, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(batch);
        RequireRgbImage(batch.Shape);
        var scores = new float[batch.Count];
        for (var i = 0; i < batch.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            scores[i] = -Judge(batch.Sample(i), batch.Shape, batch.Conditions[i]).Distance;
        }

        return Task.FromResult(scores);
    }

    private static float Unit(float value) => (Math.Clamp(value, -1f, 1f) + 1f) / 2f;

    private static int NearestColor(float r, float g, float b)
    {
        var best = 0;
        var bestDistance = float.MaxValue;
        for (var c = 0; c < Palette.Count; c++)
        {
            float dr = r - (Palette[c].R / 255f), dg = g - (Palette[c].G / 255f), db = b - (Palette[c].B / 255f);
            var d = (dr * dr) + (dg * dg) + (db * db);
            if (d < bestDistance)
            {
                best = c;
                bestDistance = d;
            }
        }

        return best;
    }

    /// <summary>A square fills its bounding box; a triangle (apex up) has fewer pixels in its top rows than in its bottom rows; anything else is a circle.</summary>
    private static string Classify(List<int> component, int width)
    {
        int top = int.MaxValue, bottom = int.MinValue, left = int.MaxValue, right = int.MinValue;
        foreach (var p in component)
        {
            int y = p / width, x = p % width;
            top = Math.Min(top, y);
            bottom = Math.Max(bottom, y);
            left = Math.Min(left, x);
            right = Math.Max(right, x);
        }

        int height = bottom - top + 1, boxWidth = right - left + 1;
        if (component.Count / (float)(height * boxWidth) >= SquareFill)
        {
            return "square";
        }

        var half = height / 2;
        int upper = 0, lower = 0;
        foreach (var p in component)
        {
            var row = (p / width) - top;
            if (row < half)
            {
                upper++;
            }
            else if (row >= height - half)
            {
                lower++;
            }
        }

        return upper + lower > 0 && upper / (float)(upper + lower) < TriangleTop ? "triangle" : "circle";
    }

    private static int SumWhere(IEnumerable<CompositionGroup> groups, Func<CompositionGroup, bool> predicate) =>
        groups.Where(predicate).Sum(g => g.Count);

    private void RequireRgbImage(SampleShape shape)
    {
        if (shape.Dimensions.Count != 3 || shape.Dimensions[0] != 3)
        {
            throw new InvalidRequestException("verifiers", $"verifier '{Name}' judges RGB images [3, H, W]; this model's samples are [{string.Join(", ", shape.Dimensions)}].");
        }
    }
}
