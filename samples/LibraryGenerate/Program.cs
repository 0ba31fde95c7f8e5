// Searches for images of exactly n objects by calling SearchOrchestrator as a library: load the model repository,
// run a shared-prefix search scored by the learned count verifier, check the winners with the programmatic counter,
// and write a captioned PNG grid.
//
//   dotnet run --project samples/LibraryGenerate -- 5      (from the repository root)
using SearchOrchestrator;
using SearchOrchestrator.Imaging;
using SearchOrchestrator.Onnx.Repository;
using SearchOrchestrator.Onnx.Runtime;
using SearchOrchestrator.Search;
using SearchOrchestrator.Strategies;
using SearchOrchestrator.Verifiers;

var condition = args.Length > 0 ? args[0] : "5";
using var repository = ModelRepository.Load(new ModelRepositoryOptions { Path = "models" });
await using var engine = new SearchEngine(new ModelCatalog(repository, [new ObjectCounter()]));

var result = await engine.RunAsync(new SearchRequest
{
    Model = "counting",
    Condition = condition,
    Steps = 50,
    Guidance = 2,
    Eta = 0.5,
    Seed = 2026,
    Strategy = new SharedPrefixStrategy(k: 8, forkAt: 20),
    Verifiers = ["count-verifier"],
    Candidates = 8,
});

var counter = new ObjectCounter();
var tiles = result.Candidates.Select(c =>
{
    var counted = counter.Count(c.Sample, c.Shape);
    return new GridTile(c.Sample, $"n={condition} c={counted}", counted.ToString() == condition ? CaptionTone.Good : CaptionTone.Bad);
}).ToList();

File.WriteAllBytes("library-sample.png", PngEncoder.Encode(ImageGrid.Compose(tiles, 24, 24, (-1f, 1f), columns: 4)));
Console.WriteLine($"best candidate: {counter.Count(result.Candidates[0].Sample, result.Candidates[0].Shape)} objects (asked for {condition}); " +
    $"NFE {result.Cost.Nfe} instead of {result.Cost.NfeIndependent} ({result.Cost.Saving:P0} saved); wrote library-sample.png");
