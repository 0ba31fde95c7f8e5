using System.Globalization;
using System.Text.Json;

namespace SearchOrchestrator.Onnx.Pipelines;

/// <summary>The JSON config files of the exported layouts we load (diffusers, Hugging Face text models), read one way.</summary>
internal static class ConfigJson
{
    /// <summary>
    /// The JSON object in <paramref name="folder"/>/<paramref name="file"/>, or null with an error naming the file: when
    /// it is not an object or not JSON, and when it is missing and <paramref name="missing"/> (why it is required) is given.
    /// </summary>
    public static JsonElement? Read(string folder, string file, List<string> errors, string? missing)
    {
        var path = Path.Combine(folder, file);
        if (!File.Exists(path))
        {
            if (missing is not null)
            {
                errors.Add($"{file}: {missing}");
            }

            return null;
        }

        try
        {
            using var document = JsonDocument.Parse(File.ReadAllText(path));
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                errors.Add($"{file}: not a JSON object");
                return null;
            }

            return document.RootElement.Clone();
        }
        catch (JsonException ex)
        {
            errors.Add($"{file}: {ex.Message.ToString(CultureInfo.InvariantCulture)}");
            return null;
        }
    }
}
