using System.CommandLine;

namespace SearchOrchestrator.Cli.Commands;

/// <summary><c>searchorch strategies</c>: the registered search strategies (built-in and plug-in) and their parameters with defaults.</summary>
internal static class StrategiesCommand
{
    public static Command Create()
    {
        var common = new CommonOptions();
        var command = new Command("strategies", "List the search strategies (built-in, and plug-ins with --plugins) and their --param parameters (defaults scale with N).")
        {
            common.Plugins,
        };
        command.SetAction((parse, _) => CommandErrors.RunAsync(async () =>
        {
            await using var host = common.CreateHost(parse);
            foreach (var definition in host.Strategies.Definitions)
            {
                Console.WriteLine($"{definition.Name,-18} {definition.Summary}");
                var width = definition.Parameters.Max(p => p.Name.Length + p.Value.Length + 1);
                foreach (var parameter in definition.Parameters)
                {
                    Console.WriteLine($"  {$"{parameter.Name}={parameter.Value}".PadRight(width)}  {parameter.Description}");
                }
            }

            return 0;
        }));
        return command;
    }
}
