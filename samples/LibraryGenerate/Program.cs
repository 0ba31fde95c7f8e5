// Generates images of n objects by calling SearchOrchestrator as a library: load the model repository,
// run independent DDIM trajectories, count what was drawn, and write a captioned PNG grid.
//
//   dotnet run --project samples/LibraryGenerate -- 5      (from the repository root)
using SearchOrchestrator.Imaging;
using SearchOrchestrator.Onnx.Repository;
using SearchOrchestrator.Sampling;
using SearchOrchestrator.Verifiers;

var condition = args.Length > 0 ? args[0] : "5";
using var repository = ModelRepository.Load(new ModelRepositoryOptions { Path = "models" });
var denoiser = repository.GetDenoiser("counting");

var result = await DenoisingLoop.RunAsync(denoiser, new SamplingRequest
{
    Conditions = Enumerable.Repeat(condition, 8).ToArray(),
    Steps = 50,
    Guidance = 2,
    Seed = 2026,
});

var counter = new ObjectCounter();
var tiles = Enumerable.Range(0, 8).Select(i =>
{
    var counted = counter.Count(result.Sample(i).Span, result.Shape);
    return new GridTile(result.Sample(i), $"n={condition} c={counted}", counted.ToString() == condition ? CaptionTone.Good : CaptionTone.Bad);
}).ToList();

File.WriteAllBytes("library-sample.png", PngEncoder.Encode(ImageGrid.Compose(tiles, 24, 24, (-1f, 1f), columns: 4)));
Console.WriteLine($"{tiles.Count(t => t.Tone == CaptionTone.Good)}/8 samples have exactly {condition} objects; NFE {result.Nfe}; wrote library-sample.png");
