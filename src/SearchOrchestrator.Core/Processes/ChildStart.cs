namespace SearchOrchestrator.Processes;

/// <summary>How a child node's state starts from its parent's (<see cref="NodeStates.Start"/>), in the tree and on a worker alike.</summary>
public enum ChildStart
{
    /// <summary>A copy of the parent's state.</summary>
    Copy = 0,

    /// <summary>Fresh prior noise from the child's key (step 0).</summary>
    Prior = 1,

    /// <summary>The parent's state renoised to the child's (earlier) step with the child's key.</summary>
    Renoise = 2,

    /// <summary>As <see cref="Renoise"/>, for a fork under a deterministic sampler (siblings must differ).</summary>
    ForkRenoise = 3,
}
