using SearchOrchestrator.Protos.Inference;

namespace SearchOrchestrator.Server.OpenInference;

/// <summary>
/// One served model's cumulative <c>ModelInfer</c> statistics, as Triton's <c>ModelStatistics</c> reports them: requests
/// that succeeded or failed and their time, batch items inferred, executions, and per batch size the time spent
/// decoding inputs, running the model and encoding the output. Thread-safe.
/// </summary>
internal sealed class ServedModelStatistics
{
    private readonly Lock _lock = new();
    private readonly SortedDictionary<int, (Duration Input, Duration Infer, Duration Output)> _byBatch = [];
    private Duration _success;
    private Duration _fail;
    private Duration _input;
    private Duration _infer;
    private Duration _output;
    private ulong _inferenceCount;
    private DateTimeOffset? _lastInference;

    /// <summary>Records a request that ran a batch of <paramref name="batch"/>, with the time of each phase.</summary>
    public void RecordSuccess(int batch, TimeSpan input, TimeSpan infer, TimeSpan output, DateTimeOffset at)
    {
        lock (_lock)
        {
            _success = _success.Add(input + infer + output);
            _input = _input.Add(input);
            _infer = _infer.Add(infer);
            _output = _output.Add(output);
            _inferenceCount += (ulong)batch;
            _lastInference = at;
            var (i, f, o) = _byBatch.GetValueOrDefault(batch);
            _byBatch[batch] = (i.Add(input), f.Add(infer), o.Add(output));
        }
    }

    /// <summary>Records a request refused or failed after <paramref name="elapsed"/>.</summary>
    public void RecordFailure(TimeSpan elapsed, DateTimeOffset at)
    {
        lock (_lock)
        {
            _fail = _fail.Add(elapsed);
            _lastInference = at;
        }
    }

    /// <summary>The statistics as the protocol reports them for <paramref name="name"/> version <paramref name="version"/>.</summary>
    public ModelStatistics ToProto(string name, string version)
    {
        lock (_lock)
        {
            var stats = new ModelStatistics
            {
                Name = name,
                Version = version,
                LastInference = _lastInference is { } last ? (ulong)last.ToUnixTimeMilliseconds() : 0,
                InferenceCount = _inferenceCount,
                ExecutionCount = _success.Count,
                InferenceStats = new InferStatistics
                {
                    Success = _success.ToProto(),
                    Fail = _fail.ToProto(),
                    // Every ModelInfer runs as it arrives: no queue in front of the model.
                    Queue = new StatisticDuration { Count = _success.Count },
                    ComputeInput = _input.ToProto(),
                    ComputeInfer = _infer.ToProto(),
                    ComputeOutput = _output.ToProto(),
                    CacheHit = new StatisticDuration(),
                    CacheMiss = new StatisticDuration(),
                },
            };
            stats.BatchStats.AddRange(_byBatch.Select(b => new InferBatchStatistics
            {
                BatchSize = (ulong)b.Key,
                ComputeInput = b.Value.Input.ToProto(),
                ComputeInfer = b.Value.Infer.ToProto(),
                ComputeOutput = b.Value.Output.ToProto(),
            }));
            return stats;
        }
    }

    private readonly record struct Duration(ulong Count, ulong Nanoseconds)
    {
        public Duration Add(TimeSpan elapsed) => new(Count + 1, Nanoseconds + (ulong)Math.Max(0, elapsed.Ticks * 100));

        public StatisticDuration ToProto() => new() { Count = Count, Ns = Nanoseconds };
    }
}
