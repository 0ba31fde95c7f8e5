using Microsoft.Extensions.DependencyInjection;
using SearchOrchestrator.Server.Tests.Grpc;

namespace SearchOrchestrator.Server.Tests.Strategies;

/// <summary>A server with the test assembly's <see cref="RootsStrategy"/> registered and a per-request cap of 128 NFE.</summary>
public sealed class StrategyServerFixture : ServerFixture
{
    public const long NfeCap = 128;

    protected override string[] ExtraArguments => ["--Serving:MaxNfePerRequest", "128"];

    protected override void Configure(SearchOrchestratorBuilder orchestrator) => orchestrator.AddStrategy<RootsStrategy>();
}
