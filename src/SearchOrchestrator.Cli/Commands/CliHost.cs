using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using SearchOrchestrator.Onnx.Repository;
using SearchOrchestrator.Search;
using SearchOrchestrator.Strategies;
using SearchOrchestrator.Workers;

namespace SearchOrchestrator.Cli.Commands;

/// <summary>
/// The one host a command resolves its services from: the registrations of <c>searchorch serve</c>
/// (<c>AddSearchOrchestrator</c>: the repository, verifier and strategy plug-ins, <c>kserve</c> verifiers, the model and
/// strategy catalogs, the engine, the pool), configured from the command's options alone (no appsettings, no
/// environment) and never started: a command runs in the foreground and nothing listens. Services are built when first
/// asked for, so a command that lists strategies loads no model.
/// </summary>
internal sealed class CliHost : IAsyncDisposable
{
    private readonly IHost _host;

    private CliHost(IHost host) => _host = host;

    /// <summary>Builds the host from <paramref name="settings"/> (configuration keys, as serve's appsettings would hold them).</summary>
    public static CliHost Create(IEnumerable<KeyValuePair<string, string?>> settings, bool verbose)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(settings);
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(verbose ? LogLevel.Information : LogLevel.Warning);
        builder.Services.AddSearchOrchestrator();
        return new CliHost(builder.Build());
    }

    /// <summary>The model repository (loaded when first asked for).</summary>
    public ModelRepository Repository => _host.Services.GetRequiredService<ModelRepository>();

    /// <summary>The repository's models with the built-in verifiers, plug-ins and <c>kserve</c> verifiers.</summary>
    public IModelProvider Models => _host.Services.GetRequiredService<IModelProvider>();

    /// <summary>The built-in strategies and the plug-ins'.</summary>
    public StrategyCatalog Strategies => _host.Services.GetRequiredService<StrategyCatalog>();

    /// <summary>The search engine over <see cref="Models"/>.</summary>
    public SearchEngine Engine => _host.Services.GetRequiredService<SearchEngine>();

    /// <summary>The pool of remote backends (empty until the command joins some).</summary>
    public WorkerPool Pool => _host.Services.GetRequiredService<WorkerPool>();

    /// <summary>Any other registered service.</summary>
    public T Get<T>() where T : notnull => _host.Services.GetRequiredService<T>();

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        // The engine and the pool are asynchronously disposable only.
        if (_host is IAsyncDisposable host)
        {
            await host.DisposeAsync().ConfigureAwait(false);
        }
        else
        {
            _host.Dispose();
        }
    }
}
