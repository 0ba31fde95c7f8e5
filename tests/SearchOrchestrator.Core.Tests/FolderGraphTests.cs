using System.Text;
using System.Text.RegularExpressions;
using SearchOrchestrator.Tests;

namespace SearchOrchestrator.Core.Tests;

/// <summary>
/// Inside a project, folders do not form cycles (DESIGN.md, Layers): every project under src/ is read as source, a
/// folder depends on another when one of its files names a type declared at the top of a file there, and the strongly
/// connected folders are the cycles.
/// </summary>
public sealed class FolderGraphTests
{
    public static TheoryData<string> Projects() =>
        [.. Directory.EnumerateDirectories(Path.Combine(RepositoryPaths.Root, "src")).Select(d => Path.GetFileName(d)!).Order(StringComparer.Ordinal)];

    [Theory]
    [MemberData(nameof(Projects))]
    public void Cycles_ProjectUnderSrc_None(string project)
    {
        var folder = Path.Combine(RepositoryPaths.Root, "src", project);
        var files = Directory.EnumerateFiles(folder, "*.cs", SearchOption.AllDirectories)
            .Where(f => !IsBuildOutput(Path.GetRelativePath(folder, f)))
            .Select(f => (Folder: FolderOf(Path.GetRelativePath(folder, f)), Name: Path.GetFileName(f), Text: File.ReadAllText(f)));

        var cycles = FolderGraph.Build(files).Cycles();

        Assert.True(cycles.Count == 0, $"{project}: folder cycles:{Environment.NewLine}{string.Join(Environment.NewLine, cycles)}");
    }

    [Fact]
    public void Cycles_TwoFoldersNamingEachOthersTypes_OneCycleWithBothEdges()
    {
        var graph = FolderGraph.Build(
        [
            ("Search", "Tree.cs", "namespace N.Search;\n\npublic sealed class Tree\n{\n    private Pool? _pool;\n}\n"),
            ("Workers", "Pool.cs", "namespace N.Workers;\n\ninternal sealed class Pool\n{\n    public Tree? Root { get; }\n}\n"),
            ("Links", "Link.cs", "namespace N.Links;\n\npublic sealed record Link(Pool Pool);\n"),
        ]);

        var cycle = Assert.Single(graph.Cycles());

        Assert.Equal("Search <-> Workers: Search -> Workers (Tree.cs: Pool); Workers -> Search (Pool.cs: Tree)", cycle);
    }

    [Fact]
    public void Cycles_TypeNamedOnlyInCommentsAndStrings_NoEdge()
    {
        var graph = FolderGraph.Build(
        [
            ("Search", "Tree.cs", "namespace N.Search;\n\n/// <summary>Not a <see cref=\"Pool\"/>.</summary>\npublic sealed class Tree\n{\n    // a Pool\n    public string Name => \"Pool\";\n}\n"),
            ("Workers", "Pool.cs", "namespace N.Workers;\n\ninternal sealed class Pool\n{\n    public Tree? Root { get; }\n}\n"),
        ]);

        Assert.Empty(graph.Cycles());
    }

    [Fact]
    public void Cycles_TypeNamedInAnInterpolationHole_OneCycle()
    {
        var graph = FolderGraph.Build(
        [
            ("Search", "Tree.cs", "namespace N.Search;\n\npublic sealed class Tree\n{\n    public string Name => $\"tree of {Pool.Count:0} \\\"{{x}}\\\"\";\n}\n"),
            ("Workers", "Pool.cs", "namespace N.Workers;\n\ninternal sealed class Pool\n{\n    public Tree? Root { get; }\n}\n"),
        ]);

        var cycle = Assert.Single(graph.Cycles());

        Assert.Equal("Search <-> Workers: Search -> Workers (Tree.cs: Pool); Workers -> Search (Pool.cs: Tree)", cycle);
    }

    private static bool IsBuildOutput(string relative) =>
        relative.Split(Path.DirectorySeparatorChar)[0] is "bin" or "obj";

    private static string FolderOf(string relative) =>
        Path.GetDirectoryName(relative) is { Length: > 0 } directory ? directory.Replace(Path.DirectorySeparatorChar, '/') : ".";
}

/// <summary>Folder-level dependencies of one project's source, from the top-level types each file names.</summary>
internal sealed partial class FolderGraph
{
    private readonly SortedDictionary<(string From, string To), SortedSet<string>> _edges = [];

    public static FolderGraph Build(IEnumerable<(string Folder, string Name, string Text)> files)
    {
        var sources = files.Select(f => (f.Folder, f.Name, Code: CodeOnly(f.Text))).ToList();
        var declaredIn = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        foreach (var (folder, _, code) in sources)
        {
            // File-scoped namespaces (house style): a top-level type starts its line.
            foreach (Match match in TopLevelType().Matches(code))
            {
                (declaredIn.TryGetValue(match.Groups["name"].Value, out var folders) ? folders : declaredIn[match.Groups["name"].Value] = []).Add(folder);
            }
        }

        var graph = new FolderGraph();
        foreach (var (folder, name, code) in sources)
        {
            foreach (var identifier in Identifier().Matches(code).Select(m => m.Value).Distinct(StringComparer.Ordinal))
            {
                foreach (var target in declaredIn.GetValueOrDefault(identifier) ?? [])
                {
                    if (target != folder)
                    {
                        var key = (folder, target);
                        (graph._edges.TryGetValue(key, out var why) ? why : graph._edges[key] = new(StringComparer.Ordinal)).Add($"{name}: {identifier}");
                    }
                }
            }
        }

        return graph;
    }

    /// <summary>Each set of folders that reach one another, with the edges between them; empty when the folders form layers.</summary>
    public IReadOnlyList<string> Cycles()
    {
        var folders = _edges.Keys.SelectMany(e => new[] { e.From, e.To }).Distinct().Order(StringComparer.Ordinal).ToList();
        var reach = folders.ToDictionary(f => f, Reachable);
        return [.. folders
            .Select(f => folders.Where(g => (g == f || reach[f].Contains(g)) && reach[g].Contains(f)).ToList())
            .Where(c => c.Count > 1)
            .Select(c => string.Join(" <-> ", c) + ": " + string.Join("; ", _edges
                .Where(e => c.Contains(e.Key.From) && c.Contains(e.Key.To))
                .Select(e => $"{e.Key.From} -> {e.Key.To} ({string.Join(", ", e.Value)})")))
            .Distinct()];
    }

    private HashSet<string> Reachable(string from)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var pending = new Stack<string>([from]);
        while (pending.TryPop(out var folder))
        {
            foreach (var (_, to) in _edges.Keys.Where(e => e.From == folder))
            {
                if (seen.Add(to))
                {
                    pending.Push(to);
                }
            }
        }

        return seen;
    }

    // Comments and literals become blanks (a type named there is no dependency); an interpolated string's holes stay code.
    private static string CodeOnly(string text)
    {
        var code = new StringBuilder(text.Length);
        var i = 0;
        Code(text, ref i, code, inHole: false);
        return code.ToString();
    }

    private static void Code(string s, ref int i, StringBuilder code, bool inHole)
    {
        var depth = 0;
        while (i < s.Length)
        {
            if (At(s, i, "//"))
            {
                i = s.IndexOf('\n', i) is var end and >= 0 ? end : s.Length;
            }
            else if (At(s, i, "/*"))
            {
                i = s.IndexOf("*/", i + 2, StringComparison.Ordinal) is var end and >= 0 ? end + 2 : s.Length;
            }
            else if (At(s, i, "\"\"\""))
            {
                i = s.IndexOf("\"\"\"", i + 3, StringComparison.Ordinal) is var end and >= 0 ? end + 3 : s.Length;
            }
            else if (At(s, i, "$\"") || At(s, i, "$@\"") || At(s, i, "@$\""))
            {
                var verbatim = s[i + 1] == '@' || s[i] == '@';
                i = s.IndexOf('"', i) + 1;
                Interpolated(s, ref i, code, verbatim);
            }
            else if (s[i] is '"' or '\'' || At(s, i, "@\""))
            {
                i = LiteralEnd(s, i);
            }
            else if (s[i] == '}' && inHole && depth == 0)
            {
                i++;
                return;
            }
            else
            {
                depth += s[i] == '{' ? 1 : s[i] == '}' ? -1 : 0;
                code.Append(s[i++]);
                continue;
            }

            code.Append(' ');
        }
    }

    private static void Interpolated(string s, ref int i, StringBuilder code, bool verbatim)
    {
        while (i < s.Length)
        {
            if (At(s, i, "{{") || At(s, i, "}}") || (verbatim && At(s, i, "\"\"")) || (!verbatim && s[i] == '\\'))
            {
                i += 2;
            }
            else if (s[i] == '{')
            {
                i++;
                Code(s, ref i, code, inHole: true);
                code.Append(' ');
            }
            else if (s[i++] == '"')
            {
                return;
            }
        }
    }

    private static int LiteralEnd(string s, int i)
    {
        var verbatim = s[i] == '@';
        var quote = verbatim ? '"' : s[i];
        i += verbatim ? 2 : 1;
        while (i < s.Length)
        {
            if (verbatim && At(s, i, "\"\""))
            {
                i += 2;
            }
            else if (!verbatim && s[i] == '\\')
            {
                i += 2;
            }
            else if (s[i++] == quote)
            {
                break;
            }
        }

        return i;
    }

    private static bool At(string s, int i, string token) => string.CompareOrdinal(s, i, token, 0, token.Length) == 0;

    [GeneratedRegex(@"^(?:(?:public|internal|file|sealed|static|abstract|partial|readonly|ref|unsafe)\s+)*(?:class|struct|interface|enum|record(?:\s+struct|\s+class)?|delegate\s+[\w<>\[\],.?\s]+?)\s+(?<name>\w+)", RegexOptions.Multiline)]
    private static partial Regex TopLevelType();

    [GeneratedRegex(@"\b[A-Z]\w*\b")]
    private static partial Regex Identifier();
}
