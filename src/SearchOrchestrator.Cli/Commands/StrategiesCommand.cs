using System.CommandLine;
using SearchOrchestrator.Strategies;

namespace SearchOrchestrator.Cli.Commands;

/// <summary><c>searchorch strategies</c>: the search strategies and their parameters with defaults.</summary>
internal static class StrategiesCommand
{
    public static Command Create()
    {
        var command = new Command("strategies", "List the search strategies and their --param parameters (defaults scale with N).");
        command.SetAction(_ =>
        {
            foreach (var name in StrategyNames.All)
            {
                Console.WriteLine($"{name,-18} {StrategyCatalog.Parameters[name]}");
            }

            return 0;
        });
        return command;
    }
}
