using System.Diagnostics;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.Client;
using SearchOrchestrator.Links;
using SearchOrchestrator.Protos.Worker.V1;
using SearchOrchestrator.Tensors;
using SearchOrchestrator.Server.Internal;
using SearchOrchestrator.Workers;
using CoreChildStart = SearchOrchestrator.Processes.ChildStart;
using CoreHostedModel = SearchOrchestrator.Workers.HostedModel;
using CoreSettings = SearchOrchestrator.Workers.TrajectorySettings;
using WireChildStart = SearchOrchestrator.Protos.Worker.V1.ChildStart;

namespace SearchOrchestrator.Server.Workers;

/// <summary>
/// <see cref="IWorkerClient"/> over gRPC: one channel per worker, the shared secret on every call, and per call the
/// bytes each way (protobuf sizes) and the transfer time (elapsed minus the worker's reported time). Answers that
/// cannot be right (wrong sizes, NaN) raise <see cref="WorkerDataException"/>; every failed call raises
/// <see cref="WorkerUnavailableException"/>.
/// </summary>
internal sealed class GrpcWorkerClient : IWorkerClient
{
    private readonly GrpcChannel _channel;
    private readonly Worker.WorkerClient _worker;
    private readonly Health.HealthClient _health;
    private readonly Metadata _headers = [];
    private readonly string _session;

    /// <summary>Connects to <paramref name="endpoint"/>; <paramref name="handler"/> replaces the HTTP handler (tests inject link costs with it).</summary>
    public GrpcWorkerClient(string endpoint, string session, string? secret, HttpMessageHandler? handler = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(endpoint);
        Endpoint = endpoint;
        _session = session;
        _channel = GrpcChannel.ForAddress(endpoint, new GrpcChannelOptions
        {
            MaxReceiveMessageSize = 256 << 20,
            MaxSendMessageSize = 256 << 20,
            HttpHandler = handler,
        });
        _worker = new Worker.WorkerClient(_channel);
        _health = new Health.HealthClient(_channel);
        if (secret is { Length: > 0 })
        {
            _headers.Add(WorkerService.SecretHeader, secret);
        }
    }

    /// <inheritdoc />
    public string Endpoint { get; }

    /// <inheritdoc />
    public Task<WorkerCall<WorkerDescription>> DescribeAsync(CancellationToken cancellationToken = default) =>
        CallAsync(new DescribeRequest(), (r, o) => _worker.DescribeAsync(r, o), _ => 0, d => new WorkerDescription
        {
            ProtocolVersion = d.ProtocolVersion,
            Models = [.. d.Models.Select(m => new CoreHostedModel(m.Name, m.Kind, m.Sha256))],
            Device = d.Device,
            ExecutionProvider = d.ExecutionProvider,
            Threads = d.Threads,
            MaxBatchSize = d.MaxBatchSize,
            MaxResidentBytes = d.MaxResidentBytes,
            PipelineStages = d.Pipelines.ToDictionary(p => p.Model, IReadOnlyList<string> (p) => [.. p.Stages], StringComparer.Ordinal),
        }, cancellationToken);

    /// <inheritdoc />
    public Task<WorkerCall<PromptEncoding>> StepAsync(CoreSettings settings, IReadOnlyList<RemoteStep> items, CancellationToken cancellationToken = default)
    {
        var request = new StepRequest { Settings = ToWire(settings) };
        request.Items.AddRange(items.Select(i => new StepItem { Key = i.Key.Value, StepIndex = i.StepIndex, State = TensorCodec.Encode<float>(i.State) }));
        return CallAsync(request, (r, o) => _worker.StepAsync(r, o), r => r.ServerMicros, response =>
        {
            if (response.Results.Count != items.Count)
            {
                throw new WorkerDataException(Endpoint, $"Step sent {items.Count} nodes and got {response.Results.Count} results back.");
            }

            for (var i = 0; i < items.Count; i++)
            {
                var state = TensorCodec.DecodeFinite(response.Results[i].State);
                var prediction = TensorCodec.DecodeFinite(response.Results[i].Prediction);
                if (state?.Length != items[i].State.Length || prediction?.Length != items[i].Prediction.Length)
                {
                    throw new WorkerDataException(Endpoint, $"Step result {i} is not {items[i].State.Length} finite float32 values.");
                }

                state.CopyTo(items[i].State, 0);
                prediction.CopyTo(items[i].Prediction, 0);
            }

            return new PromptEncoding(response.EncoderCalls, response.EncoderCacheHits);
        }, cancellationToken);
    }

    /// <inheritdoc />
    public Task<WorkerCall<bool>> PutAsync(CoreSettings settings, IReadOnlyList<ResidentState> nodes, CancellationToken cancellationToken = default)
    {
        var request = new PutRequest { Session = _session, Settings = ToWire(settings) };
        request.Items.AddRange(nodes.Select(n => new PutItem
        {
            Handle = n.Handle,
            Key = n.Key.Value,
            StepIndex = n.StepIndex,
            FromPrior = n.FromPrior,
            State = n.State is null ? ByteString.Empty : TensorCodec.Encode<float>(n.State),
            Prediction = n.Prediction is null ? ByteString.Empty : TensorCodec.Encode<float>(n.Prediction),
        }));
        return CallAsync(request, (r, o) => _worker.PutAsync(r, o), r => r.ServerMicros, _ => true, cancellationToken);
    }

    /// <inheritdoc />
    public Task<WorkerCall<RemotePasses>> AdvanceAsync(IReadOnlyList<ulong> handles, int toStep, CancellationToken cancellationToken = default)
    {
        var request = new AdvanceRequest { Session = _session, ToStep = toStep };
        request.Handles.AddRange(handles);
        return CallAsync(request, (r, o) => _worker.AdvanceAsync(r, o), r => r.ServerMicros, r => new RemotePasses(
            [.. r.Passes.Select(p => new RemotePass(p.Batch, p.Rows, TimeSpan.FromMicroseconds(p.ComputeMicros)))],
            TimeSpan.FromMicroseconds(r.QueueMicros))
        {
            Encoding = new PromptEncoding(r.EncoderCalls, r.EncoderCacheHits),
        }, cancellationToken);
    }

    /// <inheritdoc />
    /// <remarks>A single renoised child (the tree's renoise) goes as the protocol's Renoise call; anything else as Fork.</remarks>
    public Task<WorkerCall<bool>> ForkAsync(ulong parent, IReadOnlyList<ResidentChild> children, CancellationToken cancellationToken = default)
    {
        var specs = children.Select(c => new ChildSpec
        {
            Handle = c.Handle,
            Key = c.Key.Value,
            ToStep = c.ToStep,
            Start = c.Start switch { CoreChildStart.Copy => WireChildStart.Copy, CoreChildStart.Prior => WireChildStart.Prior, CoreChildStart.ForkRenoise => WireChildStart.ForkRenoise, _ => WireChildStart.Renoise },
        }).ToList();
        if (specs is [{ Start: WireChildStart.Renoise } only])
        {
            return CallAsync(new RenoiseRequest { Session = _session, Parent = parent, Child = only }, (r, o) => _worker.RenoiseAsync(r, o), r => r.ServerMicros, _ => true, cancellationToken);
        }

        var request = new ForkRequest { Session = _session, Parent = parent };
        request.Children.AddRange(specs);
        return CallAsync(request, (r, o) => _worker.ForkAsync(r, o), r => r.ServerMicros, _ => true, cancellationToken);
    }

    /// <inheritdoc />
    public Task<WorkerCall<IReadOnlyList<ResidentState>>> FetchAsync(IReadOnlyList<ulong> handles, CancellationToken cancellationToken = default)
    {
        var request = new FetchRequest { Session = _session };
        request.Handles.AddRange(handles);
        return CallAsync<FetchRequest, FetchResponse, IReadOnlyList<ResidentState>>(request, (r, o) => _worker.FetchAsync(r, o), r => r.ServerMicros, response =>
        {
            if (response.Nodes.Count != handles.Count)
            {
                throw new WorkerDataException(Endpoint, $"Fetch asked for {handles.Count} nodes and got {response.Nodes.Count}.");
            }

            return [.. response.Nodes.Select((n, i) =>
            {
                var state = TensorCodec.DecodeFinite(n.State);
                var prediction = n.Prediction.IsEmpty ? null : TensorCodec.DecodeFinite(n.Prediction);
                if (n.Handle != handles[i] || state is null || (!n.Prediction.IsEmpty && prediction is null))
                {
                    throw new WorkerDataException(Endpoint, $"Fetch result {i} (node {n.Handle}) is not the node asked for, or not finite float32 values.");
                }

                return new ResidentState(n.Handle, default, n.StepIndex, state, prediction);
            })];
        }, cancellationToken);
    }

    /// <inheritdoc />
    public Task<WorkerCall<bool>> ReleaseAsync(IReadOnlyList<ulong> handles, CancellationToken cancellationToken = default)
    {
        var request = new ReleaseRequest { Session = _session };
        request.Handles.AddRange(handles);
        return CallAsync(request, (r, o) => _worker.ReleaseAsync(r, o), r => r.ServerMicros, _ => true, cancellationToken);
    }

    /// <inheritdoc />
    public Task<WorkerCall<float[]>> VerifyAsync(string verifier, string condition, SampleShape shape, IReadOnlyList<float[]> samples, IReadOnlyList<string>? texts = null, IReadOnlyList<float>? times = null, CancellationToken cancellationToken = default)
    {
        var request = new VerifyRequest { Verifier = verifier, Condition = condition };
        request.Shape.AddRange(shape.Dimensions);
        request.Samples.AddRange(samples.Select(s => TensorCodec.Encode<float>(s)));
        request.Texts.AddRange(texts ?? []);
        request.Times.AddRange(times ?? []);
        return CallAsync(request, (r, o) => _worker.VerifyAsync(r, o), r => r.ServerMicros, r => Scores(r, samples.Count), cancellationToken);
    }

    /// <inheritdoc />
    public Task<WorkerCall<float[]>> VerifyResidentAsync(string verifier, string condition, IReadOnlyList<ulong> handles, CancellationToken cancellationToken = default)
    {
        var request = new VerifyRequest { Verifier = verifier, Condition = condition, Session = _session };
        request.Handles.AddRange(handles);
        return CallAsync(request, (r, o) => _worker.VerifyAsync(r, o), r => r.ServerMicros, r => Scores(r, handles.Count), cancellationToken);
    }

    /// <inheritdoc />
    public Task<WorkerCall<IReadOnlyList<float[]>>> DecodeAsync(string model, IReadOnlyList<float[]> latents, CancellationToken cancellationToken = default)
    {
        var request = new DecodeRequest { Model = model };
        request.Latents.AddRange(latents.Select(l => TensorCodec.Encode<float>(l)));
        return DecodeAsync(request, latents.Count, "latents", cancellationToken);
    }

    /// <inheritdoc />
    public Task<WorkerCall<IReadOnlyList<float[]>>> DecodeResidentAsync(string model, IReadOnlyList<ulong> handles, CancellationToken cancellationToken = default)
    {
        var request = new DecodeRequest { Model = model, Session = _session };
        request.Handles.AddRange(handles);
        return DecodeAsync(request, handles.Count, "handles", cancellationToken);
    }

    private Task<WorkerCall<IReadOnlyList<float[]>>> DecodeAsync(DecodeRequest request, int count, string what, CancellationToken cancellationToken)
    {
        return CallAsync<DecodeRequest, DecodeResponse, IReadOnlyList<float[]>>(request, (r, o) => _worker.DecodeAsync(r, o), r => r.ServerMicros, response =>
        {
            var elements = response.Shape.Aggregate(1L, (n, d) => n * d);
            if (response.Images.Count != count)
            {
                throw new WorkerDataException(Endpoint, $"Decode sent {count} {what} and got {response.Images.Count} images back.");
            }

            return [.. response.Images.Select((image, i) => TensorCodec.DecodeFinite(image) is { } values && values.Length == elements
                ? values
                : throw new WorkerDataException(Endpoint, $"Decode image {i} is not {elements} finite float32 values (shape [{string.Join(", ", response.Shape)}])."))];
        }, cancellationToken);
    }

    /// <inheritdoc />
    public Task<WorkerCall<bool>> ProbeAsync(int sendBytes, int receiveBytes, CancellationToken cancellationToken = default) =>
        CallAsync(new ProbeRequest { ResponseBytes = receiveBytes, Payload = ByteString.CopyFrom(new byte[sendBytes]) }, (r, o) => _worker.ProbeAsync(r, o), _ => 0, r =>
            r.Payload.Length == receiveBytes ? true : throw new WorkerDataException(Endpoint, $"Probe asked for {receiveBytes} bytes and got {r.Payload.Length}."), cancellationToken);

    /// <inheritdoc />
    public async Task<bool> IsHealthyAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            var reply = await _health.CheckAsync(new HealthCheckRequest(), new CallOptions(_headers, cancellationToken: cancellationToken));
            return reply.Status == HealthCheckResponse.Types.ServingStatus.Serving;
        }
        catch (RpcException)
        {
            return false;
        }
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        _channel.Dispose();
        return ValueTask.CompletedTask;
    }

    private static Protos.Worker.V1.TrajectorySettings ToWire(CoreSettings s)
    {
        var wire = new Protos.Worker.V1.TrajectorySettings
        {
            Model = s.Model,
            Steps = s.Steps,
            Guidance = s.Guidance,
            ConditionId = s.ConditionId,
            Sampler = new Sampler { Name = s.Sampler.Name, Numbers = { s.Sampler.Numbers }, Texts = { s.Sampler.Texts } },
        };
        if (s.TextPrompt is not null)
        {
            wire.TextPrompt = s.TextPrompt;
        }

        if (s.NegativePrompt is not null)
        {
            wire.NegativePrompt = s.NegativePrompt;
        }

        if (s.Prompt is { } prompt)
        {
            wire.PromptTokens.AddRange(prompt.Tokens);
            wire.HasClamped = prompt.Clamped is not null;
            wire.Clamped.AddRange(prompt.Clamped ?? []);
        }

        return wire;
    }

    private float[] Scores(VerifyResponse response, int expected)
    {
        if (response.Scores.Count != expected || response.Scores.Any(s => !float.IsFinite(s)))
        {
            throw new WorkerDataException(Endpoint, $"Verify sent {expected} samples and got {response.Scores.Count} scores back, or a score is not finite.");
        }

        return [.. response.Scores];
    }

    private async Task<WorkerCall<T>> CallAsync<TRequest, TResponse, T>(
        TRequest request,
        Func<TRequest, CallOptions, AsyncUnaryCall<TResponse>> invoke,
        Func<TResponse, long> serverMicros,
        Func<TResponse, T> map,
        CancellationToken cancellationToken)
        where TRequest : IMessage
        where TResponse : IMessage
    {
        var started = Stopwatch.GetTimestamp();
        TResponse response;
        try
        {
            response = await invoke(request, new CallOptions(_headers, cancellationToken: cancellationToken));
        }
        catch (RpcException) when (cancellationToken.IsCancellationRequested)
        {
            throw new OperationCanceledException(cancellationToken);
        }
        catch (RpcException ex)
        {
            throw new WorkerUnavailableException(Endpoint, $"{ex.StatusCode}: {ex.Status.Detail}", ex);
        }

        var elapsed = Stopwatch.GetElapsedTime(started);
        var server = TimeSpan.FromMicroseconds(serverMicros(response));
        var transfer = new Transfer(request.CalculateSize(), response.CalculateSize(), elapsed > server ? elapsed - server : TimeSpan.Zero);
        return new WorkerCall<T>(map(response), transfer, server);
    }
}
