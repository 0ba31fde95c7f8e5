using System.Collections;
using System.Reflection;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Configuration.CommandLine;
using Microsoft.Extensions.Configuration.EnvironmentVariables;
using Microsoft.Extensions.Configuration.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace SearchOrchestrator.Server;

/// <summary>
/// Refuses settings that no options class reads, so a misspelt <c>--Serving:MaxStep 5</c> or a stray
/// <c>--bogus-flag</c> stops the host at start instead of being ignored. The known settings are the properties of
/// every options class the host binds from configuration (each declares its section in a <c>SectionName</c>
/// constant) plus the host's own (<c>urls</c>, <c>Logging</c>, <c>Kestrel</c>, …). The command line and JSON files are
/// checked completely; environment variables only under a known section, since the environment holds much else.
/// </summary>
public static class SettingsCheck
{
    private static readonly HashSet<string> HostSettings = new(StringComparer.OrdinalIgnoreCase)
    {
        "urls", "http_ports", "https_ports", "environment", "applicationName", "contentRoot", "webroot", "AllowedHosts",
        "detailedErrors", "shutdownTimeoutSeconds", "Logging", "Kestrel", "hostBuilder", "preventHostingStartup",
        "hostingStartupAssemblies", "hostingStartupExcludeAssemblies", "suppressStatusMessages",
    };

    /// <summary>Throws <see cref="InvalidOperationException"/> naming every unknown setting (one line).</summary>
    /// <param name="configuration">The host's configuration (its sources and providers).</param>
    /// <param name="services">The host's services: every <c>BindConfiguration</c> there makes its options class known.</param>
    /// <param name="alsoRead">Options classes the host reads without binding them as options.</param>
    public static void ThrowIfUnknown(ConfigurationManager configuration, IServiceCollection services, params Type[] alsoRead)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        ArgumentNullException.ThrowIfNull(services);
        var sections = services
            .Where(d => d.ServiceType.IsGenericType && d.ServiceType.GetGenericTypeDefinition() == typeof(IOptionsChangeTokenSource<>))
            .Select(d => d.ServiceType.GenericTypeArguments[0])
            .Concat(alsoRead)
            .Distinct()
            .Select(t => (Name: t.GetField("SectionName", BindingFlags.Public | BindingFlags.Static)?.GetValue(null) as string, Type: t))
            .Where(s => s.Name is not null)
            .ToDictionary(s => s.Name!, s => s.Type, StringComparer.OrdinalIgnoreCase);
        var switches = configuration.Sources.OfType<CommandLineConfigurationSource>()
            .SelectMany(s => s.SwitchMappings?.Keys ?? [])
            .Select(k => k.TrimStart('-'))
            .ToHashSet(StringComparer.OrdinalIgnoreCase);

        var unknown = new List<string>();
        foreach (var provider in ((IConfigurationRoot)configuration).Providers)
        {
            var (origin, prefix, everyKey) = provider switch
            {
                CommandLineConfigurationProvider => (null, "--", true),
                JsonConfigurationProvider json => ($" in {json.Source.Path}", string.Empty, true),
                Microsoft.Extensions.Configuration.KeyPerFile.KeyPerFileConfigurationProvider => (" in the secret files (Secrets:Path)", string.Empty, true),
                EnvironmentVariablesConfigurationProvider => (" in the environment", string.Empty, false),
                _ => ((string?)null, (string?)null, false),
            };
            if (prefix is null)
            {
                continue;
            }

            foreach (var key in LeafKeys(provider, null))
            {
                var inSection = FindSection(sections, key) is not null;
                if ((everyKey || inSection) && !IsKnown(sections, key) && !(provider is CommandLineConfigurationProvider && switches.Contains(key)))
                {
                    var suggestion = Suggest(sections, key);
                    unknown.Add($"{prefix}{key}{origin}{(suggestion is null ? string.Empty : $" (did you mean {prefix}{suggestion}?)")}");
                }
            }
        }

        unknown = [.. unknown.Distinct(StringComparer.OrdinalIgnoreCase)];
        if (unknown.Count > 0)
        {
            throw new InvalidOperationException($"unknown setting{(unknown.Count > 1 ? "s" : string.Empty)}: {string.Join("; ", unknown)}. No options class reads {(unknown.Count > 1 ? "them" : "it")}; see README.md, Configuration reference.");
        }
    }

    private static IEnumerable<string> LeafKeys(IConfigurationProvider provider, string? parent)
    {
        foreach (var child in provider.GetChildKeys([], parent).Distinct(StringComparer.OrdinalIgnoreCase))
        {
            var path = parent is null ? child : ConfigurationPath.Combine(parent, child);
            var hasChildren = provider.GetChildKeys([], path).Any();
            if (!hasChildren || provider.TryGet(path, out _))
            {
                yield return path;
            }

            foreach (var leaf in hasChildren ? LeafKeys(provider, path) : [])
            {
                yield return leaf;
            }
        }
    }

    private static string? FindSection(Dictionary<string, Type> sections, string key) =>
        sections.Keys.Where(s => key.StartsWith(s + ConfigurationPath.KeyDelimiter, StringComparison.OrdinalIgnoreCase) || key.Equals(s, StringComparison.OrdinalIgnoreCase))
            .OrderByDescending(s => s.Length)
            .FirstOrDefault();

    private static bool IsKnown(Dictionary<string, Type> sections, string key)
    {
        if (HostSettings.Contains(key.Split(ConfigurationPath.KeyDelimiter)[0]))
        {
            return true;
        }

        if (FindSection(sections, key) is not { } section || key.Length == section.Length)
        {
            return false;
        }

        var type = sections[section];
        foreach (var segment in key[(section.Length + 1)..].Split(ConfigurationPath.KeyDelimiter))
        {
            if (IsSimple(type))
            {
                return false;
            }

            type = ElementType(type) is { } element
                ? element // a collection's index or a dictionary's key
                : type.GetProperty(segment, BindingFlags.Public | BindingFlags.Instance | BindingFlags.IgnoreCase) is { CanWrite: true } property
                    ? Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType
                    : null;
            if (type is null)
            {
                return false;
            }
        }

        return true;
    }

    private static Type? ElementType(Type type)
    {
        if (type.IsArray)
        {
            return type.GetElementType();
        }

        if (!typeof(IEnumerable).IsAssignableFrom(type) || !type.IsGenericType)
        {
            return null;
        }

        var arguments = type.GetGenericArguments();
        return arguments[^1];
    }

    private static bool IsSimple(Type type) =>
        type.IsPrimitive || type.IsEnum || type == typeof(string) || type == typeof(decimal) || type == typeof(TimeSpan)
        || type == typeof(Uri) || type == typeof(DateTime) || type == typeof(DateTimeOffset) || type == typeof(Guid);

    /// <summary>The known setting closest in spelling to <paramref name="key"/>, if one is close.</summary>
    private static string? Suggest(Dictionary<string, Type> sections, string key)
    {
        var known = sections.SelectMany(s => s.Value.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.CanWrite)
            .Select(p => $"{s.Key}:{p.Name}"));
        var best = known.Select(k => (Key: k, Distance: Distance(k.ToUpperInvariant(), key.ToUpperInvariant()))).MinBy(k => k.Distance);
        return best.Key is not null && best.Distance <= Math.Max(2, key.Length / 5) ? best.Key : null;
    }

    private static int Distance(string a, string b)
    {
        var row = Enumerable.Range(0, b.Length + 1).ToArray();
        for (var i = 1; i <= a.Length; i++)
        {
            var diagonal = row[0];
            row[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                var above = row[j];
                row[j] = Math.Min(Math.Min(row[j] + 1, row[j - 1] + 1), diagonal + (a[i - 1] == b[j - 1] ? 0 : 1));
                diagonal = above;
            }
        }

        return row[b.Length];
    }
}
