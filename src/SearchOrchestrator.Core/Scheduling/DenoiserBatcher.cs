using SearchOrchestrator.Denoising;
using SearchOrchestrator.Processes;
using SearchOrchestrator.Randomness;

namespace SearchOrchestrator.Scheduling;

/// <summary>
/// One step of one node: move <see cref="State"/> from step index <see cref="StepIndex"/> to the next, writing the
/// x0-prediction made on the way into <see cref="Prediction"/>. Everything the update needs travels with the item
/// (its time, noise levels, condition, guidance and RNG key), so items of different searches, steps and
/// schedules share a batch.
/// </summary>
public sealed record StepRequest
{
    /// <summary>The node's state x_i (the process's <see cref="DenoiserDescription.StateElements"/> floats); overwritten with x_{i+1}.</summary>
    public required float[] State { get; init; }

    /// <summary>Receives x̂0, the prediction at step i.</summary>
    public required float[] Prediction { get; init; }

    /// <summary>The step index i the node is at.</summary>
    public required int StepIndex { get; init; }

    /// <summary>The model time of step i.</summary>
    public required double Timestep { get; init; }

    /// <summary>ᾱ at step i.</summary>
    public required double AlphaBarFrom { get; init; }

    /// <summary>ᾱ at step i + 1.</summary>
    public required double AlphaBarTo { get; init; }

    /// <summary>The condition id.</summary>
    public required long Condition { get; init; }

    /// <summary>Classifier-free guidance scale (1 = none).</summary>
    public required double Guidance { get; init; }

    /// <summary>The rows this step takes in a pass: two under classifier-free guidance (conditional and unconditional), else one.</summary>
    public int Rows => ClassifierFreeGuidance.NeedsUnconditional(Guidance) ? 2 : 1;

    /// <summary>The condition id of the unconditional row of a guided step; null: the model's null id.</summary>
    public long? Unconditional { get; init; }

    /// <summary>The request's sampler (rebuildable from its plain <see cref="ISampler.Settings"/>); it applies the node's update.</summary>
    public required ISampler Sampler { get; init; }

    /// <summary>The node's RNG key: the step's noise is a pure function of (key, step index).</summary>
    public required RngKey Key { get; init; }
}

/// <summary>
/// The batcher of one denoiser backend: stacks queued steps along axis 0 (two rows for a guided step), runs one
/// forward pass, and applies each node's sampler update (DDIM, or masked unmasking) with that node's own RNG key.
/// A backend with several instances (<see cref="IMultiInstanceDenoiser"/>) gets one pump lane per instance, each with
/// its own buffers, all taking from one queue; a pass that runs alone (a lone search's step, see
/// <see cref="IMultiInstanceDenoiser.LonePass"/>) runs on the backend's lone-pass session when it has one.
/// </summary>
internal sealed class DenoiserBatcher : IAsyncDisposable
{
    private readonly Pump _pump;

    /// <summary>Creates the batcher and starts its pump.</summary>
    public DenoiserBatcher(IDenoiser denoiser, BatchingOptions options, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(denoiser);
        ArgumentNullException.ThrowIfNull(options);
        Denoiser = denoiser;
        _pump = new Pump(denoiser, options, time ?? TimeProvider.System);
    }

    /// <summary>The backend this batcher feeds.</summary>
    public IDenoiser Denoiser { get; }

    /// <summary>
    /// Registers a caller that will step one node after another on this batcher (at most one item queued at a time)
    /// until the returned scope is disposed. While every registered producer's item is in the forming batch, the batch
    /// runs without waiting out <see cref="BatchingOptions.MaxQueueDelay"/>: a lone search does not pay the delay on
    /// every step. Unregistered callers are still batched; they only make the pump wait the full delay.
    /// </summary>
    public IDisposable Producer() => _pump.Producer();

    /// <summary>Queues one step and completes when its batch has run and its state has moved.</summary>
    public Task<BatchTiming> StepAsync(StepRequest step, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(step);
        return _pump.StepAsync(step, cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => _pump.DisposeAsync();

    private sealed class Work(StepRequest step, CancellationToken cancellationToken)
        : BatchWork(step.Rows, cancellationToken)
    {
        public StepRequest Step { get; } = step;
    }

    private sealed class Pump(IDenoiser denoiser, BatchingOptions options, TimeProvider time)
        : BatchPump<Work>(denoiser.Description.Name, options, time, InstancesOf(denoiser).Count)
    {
        private int _producers;

        protected override int ExpectedItems => Volatile.Read(ref _producers) is var n and > 0 ? n : int.MaxValue;

        public IDisposable Producer()
        {
            Interlocked.Increment(ref _producers);
            return new Registration(this);
        }

        private readonly int _elements = denoiser.Description.SampleShape.ElementCount;
        private readonly int _outputs = denoiser.Description.OutputElements;
        private readonly Lane[] _lanes = [.. InstancesOf(denoiser).Select(instance => new Lane(instance, options.MaxBatchSize, denoiser.Description))];
        private readonly IDenoiser? _lonePass = (denoiser as IMultiInstanceDenoiser)?.LonePass;

        public Task<BatchTiming> StepAsync(StepRequest step, CancellationToken cancellationToken) => SubmitAsync(new Work(step, cancellationToken));

        protected override async Task ExecuteAsync(IReadOnlyList<Work> batch, int lane, CancellationToken passCancellation)
        {
            var (instance, input, output, times, conditions, guided) = _lanes[lane];
            if (_lonePass is not null && PassRunsAlone(lane))
            {
                instance = _lonePass;
            }

            var nullId = denoiser.Description.Conditions.NullId;
            // Conditional rows first, in batch order; the unconditional rows of guided steps after them.
            var rows = 0;
            var unconditionalRow = new int[batch.Count];
            foreach (var work in batch)
            {
                Stack(work.Step, rows++, work.Step.Condition, input, times, conditions);
            }

            for (var i = 0; i < batch.Count; i++)
            {
                unconditionalRow[i] = -1;
                if (batch[i].Rows == 2)
                {
                    unconditionalRow[i] = rows;
                    Stack(batch[i].Step, rows++, batch[i].Step.Unconditional ?? nullId!.Value, input, times, conditions);
                }
            }

            await instance.PredictAsync(new DenoiserBatch(rows, input, times, conditions), output, passCancellation).ConfigureAwait(false);

            for (var i = 0; i < batch.Count; i++)
            {
                var step = batch[i].Step;
                var m = _outputs;
                ReadOnlySpan<float> prediction = output.AsSpan(i * m, m);
                if (unconditionalRow[i] >= 0)
                {
                    ClassifierFreeGuidance.Combine(prediction, output.AsSpan(unconditionalRow[i] * m, m), step.Guidance, guided);
                    prediction = guided;
                }

                step.Sampler.Update(prediction, new SamplerStep(step.StepIndex, step.AlphaBarFrom, step.AlphaBarTo, step.Key), step.State, step.Prediction);
            }
        }

        private sealed class Registration(Pump pump) : IDisposable
        {
            private int _disposed;

            public void Dispose()
            {
                if (Interlocked.Exchange(ref _disposed, 1) == 0)
                {
                    Interlocked.Decrement(ref pump._producers);
                }
            }
        }

        private void Stack(StepRequest step, int row, long condition, float[] input, float[] times, long[] conditions)
        {
            step.State.AsSpan(0, _elements).CopyTo(input.AsSpan(row * _elements, _elements));
            times[row] = (float)step.Timestep;
            conditions[row] = condition;
        }

        private static IReadOnlyList<IDenoiser> InstancesOf(IDenoiser denoiser) => denoiser is IMultiInstanceDenoiser { Instances.Count: > 0 } m ? m.Instances : [denoiser];

        /// <summary>One instance and the memory its passes are stacked in.</summary>
        private sealed record Lane(IDenoiser Instance, float[] Input, float[] Output, float[] Times, long[] Conditions, float[] Guided)
        {
            public Lane(IDenoiser instance, int maxBatch, DenoiserDescription d)
                : this(instance, new float[maxBatch * d.SampleShape.ElementCount], new float[maxBatch * d.OutputElements], new float[maxBatch], new long[maxBatch], new float[d.OutputElements])
            {
            }
        }
    }
}
