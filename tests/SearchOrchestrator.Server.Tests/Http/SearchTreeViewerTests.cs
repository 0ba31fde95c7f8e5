using System.Buffers.Binary;
using Microsoft.Playwright;
using SearchOrchestrator.Server.Tests.Grpc;

namespace SearchOrchestrator.Server.Tests.Http;

/// <summary>
/// The search-tree viewer in a real browser: Debian's headless Chromium (installed by <c>make test</c> when missing;
/// Playwright never downloads one) driven by Playwright for .NET against the server on a loopback port.
/// </summary>
public sealed class SearchTreeViewerTests(ServerFixture server) : IClassFixture<ServerFixture>, IAsyncLifetime
{
    private const string Chromium = "/usr/bin/chromium";
    private IPlaywright _playwright = null!;
    private IBrowser _browser = null!;

    public async Task InitializeAsync()
    {
        Assert.True(File.Exists(Chromium), $"{Chromium} is missing: `make test` installs Debian's chromium package (apt-get install chromium).");
        _playwright = await Playwright.CreateAsync();
        _browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Chromium,
            Headless = true,
            Args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        });
    }

    public async Task DisposeAsync()
    {
        await _browser.DisposeAsync();
        _playwright.Dispose();
    }

    private async Task<IPage> OpenAsync()
    {
        var page = await _browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1200, Height = 900 } });
        await page.GotoAsync(new Uri(server.Address, "/viewer/").ToString());
        await page.WaitForFunctionAsync("document.querySelectorAll('#model option').length > 0");
        return page;
    }

    private static async Task SearchAsync(IPage page, string strategy, string parameters, int steps, double guidance)
    {
        await page.SelectOptionAsync("#model", "counting");
        await page.FillAsync("#condition", "7");
        await page.SelectOptionAsync("#strategy", strategy);
        await page.FillAsync("#params", parameters);
        await page.FillAsync("#steps", steps.ToString(System.Globalization.CultureInfo.InvariantCulture));
        await page.FillAsync("#guidance", guidance.ToString(System.Globalization.CultureInfo.InvariantCulture));
        await page.ClickAsync("#start");
    }

    private static (int Width, int Height) PngSize(byte[] png) =>
        (BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(16)), BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(20)));

    /// <summary>The tree's drawn size (CSS px) and a screenshot of it: the screenshot covers the drawing, snapped outward to whole pixels.</summary>
    private static async Task<(double Width, double Height)> AssertScreenshotCoversTheTreeAsync(IPage page)
    {
        var box = (await page.Locator("#tree").BoundingBoxAsync())!;
        var (width, height) = PngSize(await page.Locator("#tree").ScreenshotAsync());
        Assert.InRange(width, box.Width, box.Width + 1);
        Assert.InRange(height, box.Height, box.Height + 1);
        return (box.Width, box.Height);
    }

    [Fact]
    public async Task Viewer_SharedPrefixSearch_DrawsTheTrunkTheForksTheirScoresAndTheCostAccount()
    {
        var page = await OpenAsync();

        await SearchAsync(page, "shared_prefix", """{"k": 4, "fork_at": 25}""", steps: 50, guidance: 2);
        await page.WaitForSelectorAsync("#status[data-state=done]", new PageWaitForSelectorOptions { Timeout = 120_000 });

        Assert.Equal(5, await page.Locator("svg .node").CountAsync()); // the trunk and four branches
        Assert.Equal(4, await page.Locator("svg .node[data-kind=fork]").CountAsync());
        Assert.Equal(4, await page.Locator("svg path.edge.fork").CountAsync());
        Assert.Equal(4, await page.Locator("svg circle.verified").CountAsync());
        Assert.Equal("125", await page.TextContentAsync("dd[data-key='NFE spent']"));
        Assert.Equal("200", await page.TextContentAsync("dd[data-key='NFE independent']"));
        Assert.Equal("37.5 %", await page.TextContentAsync("dd[data-key='saving']"));
        Assert.Equal(4, await page.Locator("#candidates img").CountAsync());
        Assert.Equal((900, 24 + (5 * 12) + 10), await AssertScreenshotCoversTheTreeAsync(page)); // 900 px wide, one 12 px lane per node
    }

    [Fact]
    public async Task Viewer_64Particles50Steps_DrawsEveryNodeTheStreamReported()
    {
        var page = await OpenAsync();

        await SearchAsync(page, "bfs", """{"particles": 64}""", steps: 50, guidance: 1);
        // While the search streams, the page keeps answering: the tree is redrawn at most once per frame.
        await page.WaitForFunctionAsync("Number(document.getElementById('tree').dataset.nodes) >= 64", null, new PageWaitForFunctionOptions { Timeout = 120_000 });
        Assert.Equal(2, await page.EvaluateAsync<int>("1 + 1"));
        await page.WaitForSelectorAsync("#status[data-state=done]", new PageWaitForSelectorOptions { Timeout = 300_000 });

        var drawn = await page.Locator("svg .node").CountAsync();
        var reported = int.Parse(await page.TextContentAsync("dd[data-key='nodes']") ?? "0", System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(drawn >= 64, $"{drawn} nodes drawn");
        Assert.Equal(reported, drawn);
        Assert.Equal("3968", await page.TextContentAsync("dd[data-key='NFE spent']")); // 64 particles × 50 steps, and a 3-step preview of each at steps 10, 20, 30 and 40
        Assert.Equal((900, 24 + (drawn * 12) + 10), await AssertScreenshotCoversTheTreeAsync(page));
    }
}
