using SearchOrchestrator.Processes;
using SearchOrchestrator.Randomness;

namespace SearchOrchestrator.Core.Tests.Processes;

public sealed class MaskedSamplerTests
{
    // Four positions, tokens {mask = 0, 1, 2}. Softmax over the two real tokens gives the confidences:
    // p0(1) = e²/(e²+1) = 0.8808, p1(2) = e³/(e³+1) = 0.9526, p2(1) = e/(e+1) = 0.7311, p3 = 0.5 (tie → id 1).
    private static readonly float[] Logits =
    [
        0, 2, 0,
        0, 0, 3,
        0, 1, 0,
        0, 0, 0,
    ];

    private static readonly MaskedProcess Process = new(4, 3, 0, [".", "a", "b"]);
    private static readonly RngKey Key = RngKey.ForSeed(1);

    private static float Sigmoid(double x) => (float)(1 / (1 + Math.Exp(-x)));

    private static ISampler Sampler(params (string Key, object Value)[] settings)
    {
        var s = MaskedProcess.DefaultSettings;
        foreach (var (key, value) in settings)
        {
            s = value is string text ? s.With(key, text) : s.With(key, Convert.ToDouble(value, System.Globalization.CultureInfo.InvariantCulture));
        }

        return Process.CreateSampler(s);
    }

    private static float[] Prior(ISampler sampler)
    {
        var state = new float[8];
        sampler.Prior(Key, state);
        return state;
    }

    private static SamplerStep Step(int i, int n, RngKey? key = null) => new(i, (double)i / n, (double)(i + 1) / n, key ?? Key);

    [Fact]
    public void Update_ConfidencePolicyTwoSteps_UnmasksTheTwoMostConfidentThenTheRest()
    {
        var sampler = Sampler();
        var state = Prior(sampler);
        var prediction = new float[8];

        sampler.Update(Logits, Step(0, 2), state, prediction);

        // m = 4 masked, schedule keeps ⌊4·(1/2)/1⌋ = 2 masked: positions 1 (0.95) and 0 (0.88) are revealed.
        Assert.Equal([1f, 2f, 0f, 0f], state[..4]);
        Assert.Equal([Sigmoid(2), Sigmoid(3), 0f, 0f], state[4..]);
        Assert.Equal([1f, 2f, 1f, 1f], prediction[..4]);
        Assert.Equal([Sigmoid(2), Sigmoid(3), Sigmoid(1), 0.5f], prediction[4..]);

        sampler.Update(Logits, Step(1, 2), state, prediction);

        Assert.Equal([1f, 2f, 1f, 1f], state[..4]);
        Assert.Equal(state, prediction);
    }

    [Fact]
    public void Update_FourSteps_UnmasksOnePositionPerStepInConfidenceOrder()
    {
        var sampler = Sampler();
        var state = Prior(sampler);
        var prediction = new float[8];
        var order = new List<int>();
        for (var i = 0; i < 4; i++)
        {
            var before = state[..4];
            sampler.Update(Logits, Step(i, 4), state, prediction);
            order.AddRange(Enumerable.Range(0, 4).Where(p => before[p] == 0 && state[p] != 0));
        }

        Assert.Equal([1, 0, 2, 3], order);
    }

    [Theory]
    [InlineData(0.85, new[] { 1f, 2f, 0f, 0f })] // two positions above 0.85: more than the schedule's one
    [InlineData(0.99, new[] { 0f, 2f, 0f, 0f })] // none above: still the schedule's one, the most confident
    [InlineData(0.6, new[] { 1f, 2f, 1f, 0f })]
    public void Update_ThresholdPolicy_UnmasksEveryConfidentPositionAndAtLeastTheScheduledCount(double threshold, float[] expected)
    {
        var sampler = Sampler((SamplerParameters.Policy, UnmaskingPolicyNames.Threshold), (SamplerParameters.Threshold, threshold));
        var state = Prior(sampler);

        sampler.Update(Logits, Step(0, 4), state, new float[8]);

        Assert.Equal(expected, state[..4]);
    }

    [Fact]
    public void Update_RandomPolicy_UnmasksTheScheduledCountInAKeyedOrder()
    {
        var sampler = Sampler((SamplerParameters.Policy, UnmaskingPolicyNames.Random));
        var revealed = new HashSet<string>();
        for (var seed = 0; seed < 40; seed++)
        {
            var state = Prior(sampler);
            sampler.Update(Logits, Step(0, 2, RngKey.ForSeed((ulong)seed)), state, new float[8]);
            Assert.Equal(2, state[..4].Count(t => t != 0));
            revealed.Add(string.Join(',', Enumerable.Range(0, 4).Where(p => state[p] != 0)));

            var again = Prior(sampler);
            sampler.Update(Logits, Step(0, 2, RngKey.ForSeed((ulong)seed)), again, new float[8]);
            Assert.Equal(state, again);
        }

        Assert.Equal(6, revealed.Count); // all C(4, 2) pairs occur
    }

    [Fact]
    public void Update_NeverDrawsTheMaskEvenWhenItsLogitIsHighest()
    {
        float[] logits = [9, 0, 1, 9, 2, 0, 9, 0, 0, 9, 0, 0];
        foreach (var temperature in new[] { 0.0, 1.0, 5.0 })
        {
            var sampler = Sampler((SamplerParameters.Temperature, temperature));
            var state = Prior(sampler);
            sampler.Update(logits, Step(0, 1), state, new float[8]);
            Assert.DoesNotContain(0f, state[..4]);
        }
    }

    [Fact]
    public void Update_Temperature_DrawsTokensInProportionToTheirProbability()
    {
        // One position with p(a) = 1/4, p(b) = 3/4 at T = 1.
        float[] logits = [0, 0, (float)Math.Log(3), 0, 0, (float)Math.Log(3), 0, 0, (float)Math.Log(3), 0, 0, (float)Math.Log(3)];
        var sampler = Sampler((SamplerParameters.Temperature, 1.0));
        var b = 0;
        const int draws = 500;
        for (var seed = 0; seed < draws; seed++)
        {
            var state = Prior(sampler);
            sampler.Update(logits, Step(0, 1, RngKey.ForSeed((ulong)seed)), state, new float[8]);
            b += state[..4].Count(t => t == 2);
        }

        Assert.InRange(b / (4.0 * draws), 0.70, 0.80);
    }

    [Theory]
    [InlineData(SamplerParameters.TopK, 1.0)]
    [InlineData(SamplerParameters.TopP, 0.5)]
    public void Update_TopKOrTopP_RestrictsDrawsToTheMostLikelyToken(string parameter, double value)
    {
        float[] logits = [0, 0, (float)Math.Log(3), 0, 0, (float)Math.Log(3), 0, 0, (float)Math.Log(3), 0, 0, (float)Math.Log(3)];
        var sampler = Sampler((SamplerParameters.Temperature, 1.0), (parameter, value));
        for (var seed = 0; seed < 100; seed++)
        {
            var state = Prior(sampler);
            sampler.Update(logits, Step(0, 1, RngKey.ForSeed((ulong)seed)), state, new float[8]);
            Assert.All(state[..4], t => Assert.Equal(2f, t));
        }
    }

    [Fact]
    public void Update_ClampedPromptTokens_AreNeverChanged()
    {
        var sampler = Process.CreateSampler(MaskedProcess.DefaultSettings, new TokenPrompt([2, 0, 0, 1]));
        var state = Prior(sampler);
        Assert.Equal([2f, 0f, 0f, 1f, 1f, 0f, 0f, 1f], state);

        sampler.Update(Logits, Step(0, 2), state, new float[8]);
        sampler.Update(Logits, Step(1, 2), state, new float[8]);

        Assert.Equal([2f, 2f, 1f, 1f], state[..4]);
    }

    [Fact]
    public void Renoise_LeastConfident_ReMasksTheLeastConfidentUnclampedPositions()
    {
        var sampler = Process.CreateSampler(MaskedProcess.DefaultSettings, new TokenPrompt([0, 0, 0, 1]));
        float[] state = [1, 2, 1, 1, 0.6f, 0.9f, 0.7f, 1f];
        var schedule = Process.Steps(3);
        var renoised = new float[8];

        // Three maskable positions; step 1 of 3 has 2/3 of them masked: two re-masks, the 0.6 and the 0.7.
        sampler.Renoise(state, schedule, 3, 1, Key, forFork: false, renoised);

        Assert.Equal([0f, 2f, 0f, 1f, 0f, 0.9f, 0f, 1f], renoised);
    }

    [Fact]
    public void Renoise_ToStepZero_ReMasksEverythingButTheClampedPositions()
    {
        var sampler = Process.CreateSampler(MaskedProcess.DefaultSettings.With(SamplerParameters.Remask, RemaskNames.Random), new TokenPrompt([0, 2, 0, 1]));
        float[] state = [1, 2, 1, 1, 0.6f, 1f, 0.7f, 1f];
        var renoised = new float[8];

        sampler.Renoise(state, Process.Steps(4), 4, 0, Key, forFork: false, renoised);

        Assert.Equal([0f, 2f, 0f, 1f], renoised[..4]);
    }

    [Fact]
    public void Renoise_Random_ChoosesByTheChildsKey()
    {
        var sampler = Process.CreateSampler(MaskedProcess.DefaultSettings.With(SamplerParameters.Remask, RemaskNames.Random));
        float[] state = [1, 2, 1, 1, 0.6f, 0.9f, 0.7f, 0.8f];
        var chosen = new HashSet<string>();
        for (var seed = 0; seed < 30; seed++)
        {
            var renoised = new float[8];
            sampler.Renoise(state, Process.Steps(4), 4, 2, RngKey.ForSeed((ulong)seed), forFork: false, renoised);
            Assert.Equal(2, renoised[..4].Count(t => t == 0));
            chosen.Add(string.Join(',', renoised[..4]));
        }

        Assert.True(chosen.Count > 3);
    }

    [Fact]
    public void CustomPolicy_Registered_ChoosesTheOrder()
    {
        UnmaskingPolicyCatalog.Register(new RightToLeft());
        var sampler = Sampler((SamplerParameters.Policy, "test-right-to-left"));
        var state = Prior(sampler);

        sampler.Update(Logits, Step(0, 4), state, new float[8]);

        Assert.Equal([0f, 0f, 0f, 1f], state[..4]);
    }

    [Theory]
    [InlineData(SamplerParameters.Temperature, -1.0, "sampler.temperature")]
    [InlineData(SamplerParameters.TopK, 3.0, "sampler.top_k")]
    [InlineData(SamplerParameters.TopP, 0.0, "sampler.top_p")]
    [InlineData(SamplerParameters.Threshold, 1.5, "sampler.threshold")]
    [InlineData("eta", 0.5, "sampler")]
    public void CreateSampler_BadSetting_NamesIt(string parameter, double value, string field)
    {
        var settings = MaskedProcess.DefaultSettings.With(SamplerParameters.Policy, UnmaskingPolicyNames.Threshold).With(parameter, value);
        var ex = Assert.Throws<InvalidRequestException>(() => Process.CreateSampler(settings));
        Assert.Equal(field, ex.Argument);
    }

    [Fact]
    public void CreateSampler_UnknownPolicy_ListsTheRegisteredOnes()
    {
        var ex = Assert.Throws<InvalidRequestException>(() => Process.CreateSampler(MaskedProcess.DefaultSettings.With(SamplerParameters.Policy, "premises-first")));
        Assert.Contains("confidence", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(new[] { 1, 5 }, null, "tokens", "token id 5 at position 1")]
    [InlineData(new[] { 1, 2, 1, 2, 1 }, null, "tokens", "5 tokens")]
    [InlineData(new[] { 1, 0 }, new[] { 1 }, "clamped", "holds the mask")]
    [InlineData(new[] { 1, 2 }, new[] { 4 }, "clamped", "outside the sequence")]
    public void Resolve_BadPrompt_NamesTheField(int[] tokens, int[]? clamped, string field, string message)
    {
        var ex = Assert.Throws<InvalidRequestException>(() => Process.Resolve(new TokenPrompt(tokens, clamped)));
        Assert.Equal(field, ex.Argument);
        Assert.Contains(message, ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("ab.", "exactly 4 characters")]
    [InlineData("abxa", "character 'x' at position 2")]
    public void Parse_BadText_SaysWhatIsWrong(string text, string message)
    {
        var ex = Assert.Throws<InvalidRequestException>(() => Process.Parse(text, "puzzle"));
        Assert.Equal("puzzle", ex.Argument);
        Assert.Contains(message, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ParseAndDecode_RoundTrip()
    {
        var prompt = Process.Parse("a.b0", "puzzle");

        Assert.Equal([1, 0, 2, 0], prompt.Tokens);
        Assert.Equal("a.b.", Process.Decode([1, 0, 2, 0]));
    }

    [Fact]
    public void Steps_MoreThanThePositions_IsRejected()
    {
        Assert.Equal("steps", Assert.Throws<InvalidRequestException>(() => Process.Steps(5)).Argument);
        Assert.Equal(0.25, Process.Steps(4).AlphaBarAt(1));
        Assert.Equal(0.75, Process.Steps(4).TimestepAt(1));
    }

    [Fact]
    public void SamplerSettings_EqualByContentWithCanonicalText()
    {
        var a = new SamplerSettings("masked", [new("temperature", 0.5)], [new("policy", "random")]);
        var b = MaskedProcess.DefaultSettings.With("temperature", 0.5).With("policy", "random").With("remask", "confidence");

        Assert.Equal("masked(temperature=0.5, policy=random)", a.ToString());
        Assert.Equal(a.With("remask", "confidence"), b);
        Assert.Equal(a.With("remask", "confidence").GetHashCode(), b.GetHashCode());
    }

    private sealed class RightToLeft : IUnmaskingPolicy
    {
        public string Name => "test-right-to-left";

        public IReadOnlyList<string> Parameters => [];

        public void Choose(UnmaskingInput input, List<int> chosen) => chosen.AddRange(input.Masked.OrderDescending().Take(input.Count));
    }
}
