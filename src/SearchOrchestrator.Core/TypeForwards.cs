using System.Runtime.CompilerServices;

// The contracts a plug-in compiles against moved to SearchOrchestrator.Abstractions; plug-ins built against an earlier
// SearchOrchestrator.Core still find them here.
[assembly: TypeForwardedTo(typeof(SearchOrchestrator.CallerInput))]
[assembly: TypeForwardedTo(typeof(SearchOrchestrator.InvalidRequestException))]
[assembly: TypeForwardedTo(typeof(SearchOrchestrator.ModelNotFoundException))]
[assembly: TypeForwardedTo(typeof(SearchOrchestrator.Search.CostPlan))]
[assembly: TypeForwardedTo(typeof(SearchOrchestrator.Search.ISearchStrategy))]
[assembly: TypeForwardedTo(typeof(SearchOrchestrator.Search.ISearchStrategy<>))]
[assembly: TypeForwardedTo(typeof(SearchOrchestrator.Search.NfeRange))]
[assembly: TypeForwardedTo(typeof(SearchOrchestrator.Search.PlanContext))]
[assembly: TypeForwardedTo(typeof(SearchOrchestrator.Search.StrategyDefinition))]
[assembly: TypeForwardedTo(typeof(SearchOrchestrator.Search.StrategyOutcome))]
[assembly: TypeForwardedTo(typeof(SearchOrchestrator.Search.StrategyParameter))]
[assembly: TypeForwardedTo(typeof(SearchOrchestrator.Search.StrategyParameters))]
[assembly: TypeForwardedTo(typeof(SearchOrchestrator.Tensors.SampleShape))]
[assembly: TypeForwardedTo(typeof(SearchOrchestrator.Verifiers.IVerifier))]
[assembly: TypeForwardedTo(typeof(SearchOrchestrator.Verifiers.VerifierBatch))]
[assembly: TypeForwardedTo(typeof(SearchOrchestrator.Verifiers.VerifierKinds))]
