using System.Text;
using Microsoft.Extensions.Configuration;
using SearchOrchestrator.Server.Discovery;
using SearchOrchestrator.Server.OpenInference;
using SearchOrchestrator.Tests;
using YamlDotNet.RepresentationModel;

namespace SearchOrchestrator.Server.Tests.Deploy;

/// <summary>samples/deploy parses, and its documents refer to each other by names that exist (no cluster needed).</summary>
public sealed class DeployManifestTests
{
    private static readonly string Folder = Path.Combine(RepositoryPaths.Root, "samples", "deploy");

    /// <summary>Every YAML document under samples/deploy, with the file it came from.</summary>
    private static List<(string File, YamlMappingNode Root)> Documents()
    {
        var documents = new List<(string, YamlMappingNode)>();
        foreach (var file in Directory.EnumerateFiles(Folder, "*.yaml", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            var stream = new YamlStream();
            using (var reader = new StreamReader(file))
            {
                stream.Load(reader);
            }

            foreach (var document in stream.Documents)
            {
                documents.Add((Path.GetRelativePath(Folder, file), Assert.IsType<YamlMappingNode>(document.RootNode)));
            }
        }

        return documents;
    }

    private static YamlNode? At(YamlNode? node, params string[] path)
    {
        foreach (var key in path)
        {
            if (node is not YamlMappingNode map || !map.Children.TryGetValue(new YamlScalarNode(key), out node))
            {
                return null;
            }
        }

        return node;
    }

    private static string? Text(YamlNode? node, params string[] path) => (At(node, path) as YamlScalarNode)?.Value;

    private static IEnumerable<YamlNode> Items(YamlNode? node, params string[] path) => At(node, path) is YamlSequenceNode list ? list.Children : [];

    private static Dictionary<string, string> Labels(YamlNode? node) =>
        (node as YamlMappingNode)?.Children.ToDictionary(p => ((YamlScalarNode)p.Key).Value!, p => ((YamlScalarNode)p.Value).Value!) ?? [];

    private static string Name(YamlNode document) => $"{Text(document, "kind")}/{Text(document, "metadata", "name")}";

    private static IEnumerable<YamlMappingNode> OfKind(IEnumerable<(string File, YamlMappingNode Root)> documents, params string[] kinds) =>
        documents.Select(d => d.Root).Where(d => kinds.Contains(Text(d, "kind")));

    [Fact]
    public void Documents_EveryOne_HasApiVersionKindNameAndTheNamespace()
    {
        var documents = Documents();

        Assert.Equal(8, documents.Count);
        Assert.All(documents, d =>
        {
            Assert.False(string.IsNullOrEmpty(Text(d.Root, "apiVersion")), $"{d.File}: a document has no apiVersion");
            Assert.False(string.IsNullOrEmpty(Text(d.Root, "kind")), $"{d.File}: a document has no kind");
            Assert.False(string.IsNullOrEmpty(Text(d.Root, "metadata", "name")), $"{d.File}: {Text(d.Root, "kind")} has no metadata.name");
            if (Text(d.Root, "kind") != "Namespace")
            {
                Assert.True(Text(d.Root, "metadata", "namespace") == "searchorch", $"{d.File}: {Name(d.Root)} is not in namespace searchorch");
            }
        });
        Assert.Equal(documents.Count, documents.Select(d => Name(d.Root)).Distinct().Count());
    }

    [Fact]
    public void Services_Selectors_MatchAWorkloadsPodLabelsAndNamedPorts()
    {
        var documents = Documents();
        var workloads = OfKind(documents, "Deployment", "StatefulSet").ToList();
        Assert.All(workloads, w => Assert.All(Labels(At(w, "spec", "selector", "matchLabels")), l =>
            Assert.True(Labels(At(w, "spec", "template", "metadata", "labels")).GetValueOrDefault(l.Key) == l.Value, $"{Name(w)}: selector {l.Key}={l.Value} does not match its pod template's labels")));

        foreach (var service in OfKind(documents, "Service"))
        {
            var selector = Labels(At(service, "spec", "selector"));
            Assert.NotEmpty(selector);
            var selected = workloads.Where(w => selector.All(l => Labels(At(w, "spec", "template", "metadata", "labels")).GetValueOrDefault(l.Key) == l.Value)).ToList();
            var only = Assert.Single(selected);
            var portNames = Items(only, "spec", "template", "spec", "containers").SelectMany(c => Items(c, "ports")).Select(p => Text(p, "name")).ToHashSet();
            foreach (var port in Items(service, "spec", "ports"))
            {
                var target = Text(port, "targetPort");
                Assert.True(target is not null && (int.TryParse(target, out _) || portNames.Contains(target)), $"{Name(service)}: targetPort '{target}' is not a port of {Name(only)} ({string.Join(", ", portNames)})");
            }
        }
    }

    /// <summary>
    /// The Secrets README.md's <c>kubectl create secret</c> commands make, with their keys: the applied set defines
    /// none, so applying it never overwrites them.
    /// </summary>
    private static Dictionary<string, HashSet<string>> CreatedSecrets()
    {
        var secrets = new Dictionary<string, HashSet<string>>();
        var readme = File.ReadAllText(Path.Combine(Folder, "README.md")).Replace("\\\n", " ", StringComparison.Ordinal);
        foreach (System.Text.RegularExpressions.Match create in System.Text.RegularExpressions.Regex.Matches(readme, @"kubectl -n searchorch create secret (generic|tls) (\S+)([^\n]*)"))
        {
            var keys = create.Groups[1].Value == "tls"
                ? ["tls.crt", "tls.key"]
                : System.Text.RegularExpressions.Regex.Matches(create.Groups[3].Value, @"--from-(?:literal|file)=([^=\s]+)").Select(m => m.Groups[1].Value).ToHashSet();
            secrets[$"Secret/{create.Groups[2].Value}"] = keys;
        }

        return secrets;
    }

    [Fact]
    public void AppliedSet_DefinesNoSecret_TheReadmeCreatesThemWithKubectl()
    {
        var documents = Documents();

        Assert.Empty(OfKind(documents, "Secret").Select(Name));
        Assert.Equal(["Secret/searchorch-tls", "Secret/searchorch-worker-secret"], CreatedSecrets().Keys.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Workloads_ConfigMapsSecretsAndTheirKeys_Exist()
    {
        var documents = Documents();
        var keys = OfKind(documents, "ConfigMap").ToDictionary(
            Name,
            d => new[] { "data", "stringData" }.SelectMany(k => (At(d, k) as YamlMappingNode)?.Children.Keys ?? []).Select(k => ((YamlScalarNode)k).Value!).ToHashSet());
        foreach (var (secret, secretKeys) in CreatedSecrets())
        {
            keys[secret] = secretKeys;
        }

        foreach (var workload in OfKind(documents, "Deployment", "StatefulSet"))
        {
            var pod = At(workload, "spec", "template", "spec");
            var volumes = new Dictionary<string, string?>();
            foreach (var volume in Items(pod, "volumes"))
            {
                if (At(volume, "emptyDir") is not null)
                {
                    volumes[Text(volume, "name")!] = null;
                    continue;
                }

                var source = Text(volume, "configMap", "name") is { } map ? $"ConfigMap/{map}" : $"Secret/{Text(volume, "secret", "secretName")}";
                Assert.True(keys.ContainsKey(source), $"{Name(workload)}: volume '{Text(volume, "name")}' refers to {source}, which neither a document nor the README's kubectl commands create");
                volumes[Text(volume, "name")!] = source;
            }

            foreach (var container in Items(pod, "containers"))
            {
                foreach (var mount in Items(container, "volumeMounts"))
                {
                    Assert.True(volumes.TryGetValue(Text(mount, "name")!, out var source), $"{Name(workload)}: mount '{Text(mount, "name")}' has no volume");
                    if (Text(mount, "subPath") is { } subPath)
                    {
                        Assert.True(keys[source!].Contains(subPath), $"{Name(workload)}: subPath '{subPath}' is not a key of {source}");
                    }
                }

                foreach (var env in Items(container, "env"))
                {
                    if (At(env, "valueFrom", "secretKeyRef") is { } secret)
                    {
                        var source = $"Secret/{Text(secret, "name")}";
                        Assert.True(keys.TryGetValue(source, out var secretKeys) && secretKeys.Contains(Text(secret, "key")!), $"{Name(workload)}: env {Text(env, "name")} refers to {source} key '{Text(secret, "key")}', which is not created");
                    }
                }
            }
        }
    }

    [Fact]
    public void Workloads_RunLockedDownWithHealthProbesMetricsAndADisruptionBudget()
    {
        var documents = Documents();
        var budgets = OfKind(documents, "PodDisruptionBudget").ToList();
        foreach (var workload in OfKind(documents, "Deployment", "StatefulSet"))
        {
            var pod = At(workload, "spec", "template", "spec");
            Assert.Equal("true", Text(pod, "securityContext", "runAsNonRoot"));
            Assert.Equal("RuntimeDefault", Text(pod, "securityContext", "seccompProfile", "type"));
            var container = Assert.Single(Items(pod, "containers"));
            Assert.Equal("false", Text(container, "securityContext", "allowPrivilegeEscalation"));
            Assert.Equal("true", Text(container, "securityContext", "readOnlyRootFilesystem"));
            Assert.Equal(["ALL"], Items(container, "securityContext", "capabilities", "drop").Select(d => ((YamlScalarNode)d).Value));

            var port = Text(Assert.Single(Items(container, "ports")), "containerPort");
            Assert.Equal(["dotnet", "/app/searchorch.dll", "health", $"https://127.0.0.1:{port}"], Items(container, "readinessProbe", "exec", "command").Select(c => ((YamlScalarNode)c).Value));
            Assert.NotNull(At(container, "livenessProbe", "tcpSocket"));
            Assert.NotNull(At(container, "startupProbe"));

            var annotations = Labels(At(workload, "spec", "template", "metadata", "annotations"));
            Assert.Equal(port, annotations["prometheus.io/port"]);
            Assert.Equal("/metrics", annotations["prometheus.io/path"]);

            var podLabels = Labels(At(workload, "spec", "template", "metadata", "labels"));
            Assert.Single(budgets, b => Labels(At(b, "spec", "selector", "matchLabels")).All(l => podLabels.GetValueOrDefault(l.Key) == l.Value));
        }
    }

    [Fact]
    public void StatefulSet_ServiceName_IsAHeadlessServiceThatDiscoveryResolves()
    {
        var documents = Documents();
        var workers = Assert.Single(OfKind(documents, "StatefulSet"));
        var headless = Assert.Single(OfKind(documents, "Service"), s => Text(s, "metadata", "name") == Text(workers, "spec", "serviceName"));
        Assert.Equal("None", Text(headless, "spec", "clusterIP"));

        var discovery = Orchestrator().GetSection(DnsDiscoveryOptions.SectionName).Get<DnsDiscoveryOptions>()!;
        Assert.Empty(DnsDiscoveryOptionsValidator.Check(discovery, DnsDiscoveryOptions.SectionName));
        Assert.Equal($"{Text(headless, "metadata", "name")}.{Text(headless, "metadata", "namespace")}.svc.cluster.local", discovery.Name);
        Assert.Equal(Text(Items(headless, "spec", "ports").Single(), "port"), discovery.Port.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public void ConfigMap_OrchestratorSettings_BindAndValidate()
    {
        var configuration = Orchestrator();

        var kserve = configuration.GetSection(KServeOptions.SectionName).Get<KServeOptions>()!;

        Assert.Empty(KServeOptionsValidator.Check(kserve));
        Assert.Equal("x", Assert.Single(kserve.KServe).Models["counting"].Tensors["sample"]);
        Assert.Equal("/etc/searchorch/tls/tls.crt", configuration["Serving:CertificatePath"]);
        var workers = configuration.GetSection(SearchOrchestrator.Workers.WorkerOptions.SectionName).Get<SearchOrchestrator.Workers.WorkerOptions>()!;
        Assert.Equal("/etc/searchorch/tls/ca.crt", workers.Tls.CaBundlePath);
        Assert.Equal("searchorch-workers.searchorch.svc", workers.Tls.ServerName);
    }

    /// <summary>The options type each settings section binds to, for checking that a setting's name exists.</summary>
    private static readonly Dictionary<string, Type> Sections = new(StringComparer.Ordinal)
    {
        ["Workers"] = typeof(SearchOrchestrator.Workers.WorkerOptions),
        ["Worker"] = typeof(SearchOrchestrator.Server.Workers.WorkerHostOptions),
        ["Serving"] = typeof(SearchOrchestrator.Server.Grpc.ServingOptions),
    };

    /// <summary>Null when <paramref name="setting"/> (<c>Section__Key</c> or <c>Section:Key</c>) names a real setting, else what is wrong.</summary>
    private static string? Unknown(string setting)
    {
        var parts = setting.Replace("__", ":", StringComparison.Ordinal).Split(':');
        return Sections.TryGetValue(parts[0], out var type)
            ? type.GetProperty(parts[1]) is null ? $"{setting}: {type.Name} has no setting {parts[1]}" : null
            : $"{setting}: unknown section {parts[0]}";
    }

    [Fact]
    public void Workloads_EnvironmentSettings_NameRealSettingsAndBind()
    {
        var documents = Documents();
        var containers = OfKind(documents, "Deployment", "StatefulSet").ToDictionary(
            w => Text(w, "metadata", "name")!,
            w => Items(w, "spec", "template", "spec", "containers").Single());
        var env = containers.ToDictionary(c => c.Key, c => Items(c.Value, "env")
            .Where(e => Text(e, "name") != "DOTNET_ENVIRONMENT")
            .ToDictionary(e => Text(e, "name")!.Replace("__", ":", StringComparison.Ordinal), e => Text(e, "value") ?? "from-a-secret"));

        var orchestrator = new ConfigurationBuilder().AddConfiguration(Orchestrator()).AddInMemoryCollection(env["searchorch-orchestrator"]!).Build()
            .GetSection(SearchOrchestrator.Workers.WorkerOptions.SectionName).Get<SearchOrchestrator.Workers.WorkerOptions>()!;
        var worker = new ConfigurationBuilder().AddInMemoryCollection(env["searchorch-worker"]!).Build()
            .GetSection(SearchOrchestrator.Server.Workers.WorkerHostOptions.SectionName).Get<SearchOrchestrator.Server.Workers.WorkerHostOptions>()!;

        Assert.Empty(env.Values.SelectMany(e => e.Keys).Select(Unknown).OfType<string>());
        Assert.Equal("from-a-secret", orchestrator.Secret);
        Assert.Equal(SearchOrchestrator.Workers.WorkerModes.Resident, orchestrator.Mode);
        // Everything validates except that the CA bundle the pod mounts from the Secret is not on this machine.
        Assert.Equal(["Workers:Tls:CaBundlePath: the file '/etc/searchorch/tls/ca.crt' does not exist."], orchestrator.Validate());
        Assert.Equal("from-a-secret", worker.Secret);
        Assert.Equal(["serve", "--urls", "https://0.0.0.0:50051"], Items(containers["searchorch-orchestrator"], "args").Select(a => ((YamlScalarNode)a).Value));
        Assert.Equal(["worker", "--urls", "https://0.0.0.0:50061"], Items(containers["searchorch-worker"], "args").Select(a => ((YamlScalarNode)a).Value));
    }

    [Fact]
    public void SystemdUnit_HasItsSectionsAndStartsAWorker()
    {
        var unit = File.ReadAllLines(Path.Combine(Folder, "systemd", "searchorch-worker.service"));

        Assert.Equal(["[Unit]", "[Service]", "[Install]"], unit.Where(l => l.StartsWith('[')));
        Assert.Contains(unit, l => l.StartsWith("ExecStart=/opt/searchorch/searchorch worker --urls https://0.0.0.0:50061 ", StringComparison.Ordinal));
        Assert.DoesNotContain(unit, l => !l.StartsWith('#') && l.Contains("Secret", StringComparison.Ordinal)); // the secret stays in the EnvironmentFile
        var settings = unit.Where(l => l.StartsWith("Environment=", StringComparison.Ordinal) && !l.Contains("DOTNET_", StringComparison.Ordinal))
            .Select(l => l["Environment=".Length..].Split('=')[0]).ToList();
        Assert.Equal(["Serving__CertificatePath", "Serving__CertificateKeyPath", "Worker__Join", "Worker__Advertise"], settings);
        Assert.Empty(settings.Select(Unknown).OfType<string>());
    }

    /// <summary>The orchestrator's appsettings.json, from the ConfigMap, as the host would read it.</summary>
    private static IConfigurationRoot Orchestrator()
    {
        var map = Assert.Single(OfKind(Documents(), "ConfigMap"));
        var json = Text(map, "data", "orchestrator.appsettings.json")!;
        return new ConfigurationBuilder().AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(json))).Build();
    }
}
