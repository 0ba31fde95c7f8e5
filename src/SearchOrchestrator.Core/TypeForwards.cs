using System.Runtime.CompilerServices;

// The contracts a plug-in compiles against moved to SearchOrchestrator.Abstractions; plug-ins built against an earlier
// SearchOrchestrator.Core still find them here.
[assembly: TypeForwardedTo(typeof(SearchOrchestrator.InvalidRequestException))]
[assembly: TypeForwardedTo(typeof(SearchOrchestrator.ModelNotFoundException))]
[assembly: TypeForwardedTo(typeof(SearchOrchestrator.Tensors.SampleShape))]
[assembly: TypeForwardedTo(typeof(SearchOrchestrator.Verifiers.IVerifier))]
[assembly: TypeForwardedTo(typeof(SearchOrchestrator.Verifiers.VerifierBatch))]
[assembly: TypeForwardedTo(typeof(SearchOrchestrator.Verifiers.VerifierKinds))]
