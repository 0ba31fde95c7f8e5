// A client of `searchorch serve`: runs a shared-prefix search for one count over gRPC, shows its progress as a live
// line, prints the cost account, and saves the best candidates as one captioned PNG grid.
//
//   dotnet run --project samples/CSharpClient -- [address] [count]     (default http://127.0.0.1:50051, 7)
using Grpc.Core;
using System.Runtime.InteropServices;
using Grpc.Net.Client;
using SearchOrchestrator.Imaging;
using SearchOrchestrator.Protos.V1;

var address = args.Length > 0 ? args[0] : "http://127.0.0.1:50051";
var count = args.Length > 1 ? args[1] : "7";
using var channel = GrpcChannel.ForAddress(address);
var client = new Search.SearchClient(channel);

var request = new GenerateRequest
{
    Model = "counting",
    Condition = count,
    Steps = 50,
    Guidance = 2,
    Eta = 0.5,
    Seed = 42,
    SharedPrefix = new SharedPrefix { K = 8, ForkAt = 20 },
    Verifiers = { "count-verifier" },
    Candidates = 4,
    IncludeTensors = true,
};
var apiKey = Environment.GetEnvironmentVariable("SEARCHORCH_API_KEY");
var headers = string.IsNullOrEmpty(apiKey) ? null : new Metadata { { "x-api-key", apiKey } };

try
{
    using var call = client.GenerateStream(request, headers, deadline: DateTime.UtcNow.AddMinutes(2));
    await foreach (var e in call.ResponseStream.ReadAllAsync())
    {
        if (e.EventCase == GenerateEvent.EventOneofCase.Progress)
        {
            var p = e.Progress;
            Console.Write($"\rNFE {p.Nfe,5}  nodes {p.Nodes,3}  deepest step {p.DeepestStep,2}/{request.Steps}  {p.ElapsedMs / 1000:0.0} s   ");
            continue;
        }

        var result = e.Result;
        Console.WriteLine();
        var cost = result.Cost;
        Console.WriteLine($"{result.Strategy}: NFE {cost.Nfe} (independent {cost.NfeIndependent}, saving {cost.Saving:P1}), verifier calls {cost.VerifierCalls}, {cost.Batches} batches of {cost.MeanBatchSize:0.0} rows, {cost.WallMs:0} ms");
        var tiles = new List<GridTile>();
        for (var i = 0; i < result.Candidates.Count; i++)
        {
            var candidate = result.Candidates[i];
            // Raw little-endian float32, as the contract says.
            var pixels = MemoryMarshal.Cast<byte, float>(candidate.Tensor.Span).ToArray();
            tiles.Add(new GridTile(pixels, $"{i + 1}. {candidate.Score:0.00}"));
            Console.WriteLine($"  {i + 1}. path {candidate.Path,-6} score {candidate.Score:0.000}");
        }

        var shape = result.Candidates[0].Shape;
        await File.WriteAllBytesAsync("candidates.png", PngEncoder.Encode(ImageGrid.Compose(tiles, shape[1], shape[2], (-1f, 1f), columns: tiles.Count)));
        Console.WriteLine("wrote candidates.png");
    }
}
catch (RpcException ex)
{
    Console.Error.WriteLine($"search failed: {ex.StatusCode}: {ex.Status.Detail}");
    return 1;
}

return 0;
