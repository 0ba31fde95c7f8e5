namespace SearchOrchestrator.Workers;

/// <summary>
/// A backend the <see cref="WorkerPool"/> holds next to its workers that keeps no node state: a model server speaking
/// the Open Inference Protocol, for instance. Every step moves its tensors, so placement charges its link on every step
/// exactly as for a stateless worker. Its steps throw <see cref="WorkerUnavailableException"/> or
/// <see cref="WorkerDataException"/> on failure (the tree then reruns them elsewhere); a backend that keeps failing
/// leaves the rotation and comes back once <see cref="IPooledBackend.CheckHealthAsync"/> passes.
/// </summary>
public interface IStatelessBackend : IPooledBackend
{
}

/// <summary>The kinds of backend a pool holds, by the names configuration uses.</summary>
public static class BackendKinds
{
    /// <summary>A <c>searchorch worker</c> reached through the worker protocol (stateless or resident).</summary>
    public const string Worker = "worker";

    /// <summary>An Open Inference Protocol (KServe v2) server: Triton, OpenVINO Model Server, a KServe runtime, a <c>searchorch worker</c>.</summary>
    public const string KServe = "kserve";
}
