"""The networks of the shapes-t2i family: a CLIP-style text encoder, a small KL autoencoder (VAE), a latent U-Net
with cross-attention to the text, and a learned image-caption verifier."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of (possibly fractional) training-step times t in [0, 1000)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None, :]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


class Attention(nn.Module):
    """Multi-head attention from x [B, N, dim] to context [B, M, context_dim] (self-attention without context)."""

    def __init__(self, dim: int, heads: int, context_dim: int = None):
        super().__init__()
        context_dim = context_dim or dim
        self.heads = heads
        self.scale = 1.0 / math.sqrt(dim // heads)
        self.q = nn.Linear(dim, dim, bias=False)
        self.k = nn.Linear(context_dim, dim, bias=False)
        self.v = nn.Linear(context_dim, dim, bias=False)
        self.out = nn.Linear(dim, dim)

    def forward(self, x, context=None, mask=None):
        context = x if context is None else context
        b, n, d = x.shape
        h = self.heads

        def split(z):
            return z.reshape(b, -1, h, d // h).transpose(1, 2)

        q, k, v = split(self.q(x)), split(self.k(context)), split(self.v(context))
        w = (q @ k.transpose(-1, -2)) * self.scale
        if mask is not None:
            w = w + mask
        y = (w.softmax(-1) @ v).transpose(1, 2).reshape(b, n, d)
        return self.out(y)


class TextEncoder(nn.Module):
    """CLIP-style text transformer: token + position embeddings, causal pre-norm blocks, final LayerNorm.
    input_ids [B, L] -> (last_hidden_state [B, L, width], pooler_output [B, width] = the state at the first
    end-of-text token, which has the highest id, as CLIPTextModel pools)."""

    def __init__(self, vocab: int, max_length: int, width: int = 64, layers: int = 2, heads: int = 4):
        super().__init__()
        self.token = nn.Embedding(vocab, width)
        self.position = nn.Parameter(torch.randn(max_length, width) * 0.01)
        self.blocks = nn.ModuleList()
        for _ in range(layers):
            self.blocks.append(nn.ModuleDict({
                "norm1": nn.LayerNorm(width), "attn": Attention(width, heads),
                "norm2": nn.LayerNorm(width),
                "mlp": nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, width)),
            }))
        self.final = nn.LayerNorm(width)
        causal = torch.full((max_length, max_length), float("-inf")).triu(1)
        self.register_buffer("causal", causal, persistent=False)

    def forward(self, input_ids):
        ids = input_ids.long()
        n = ids.shape[1]
        x = self.token(ids) + self.position[:n]
        mask = self.causal[:n, :n]
        for blk in self.blocks:
            x = x + blk["attn"](blk["norm1"](x), mask=mask)
            x = x + blk["mlp"](blk["norm2"](x))
        x = self.final(x)
        pooled = x[torch.arange(x.shape[0]), ids.argmax(dim=-1)]
        return x, pooled


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, emb: int = 0):
        super().__init__()
        self.norm1 = nn.GroupNorm(8, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb, 2 * cout) if emb else None
        self.norm2 = nn.GroupNorm(8, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, e=None):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.norm2(h)
        if self.emb is not None:
            scale, shift = self.emb(e)[:, :, None, None].chunk(2, dim=1)
            h = h * (1 + scale) + shift  # FiLM on time and pooled text
        h = self.conv2(F.silu(h))
        return h + self.skip(x)


class SpatialTransformer(nn.Module):
    """Self-attention over positions, cross-attention to the text states, feed-forward (as in SD's U-Net)."""

    def __init__(self, channels: int, context_dim: int, heads: int = 4):
        super().__init__()
        self.norm = nn.GroupNorm(8, channels)
        self.norm1 = nn.LayerNorm(channels)
        self.self_attn = Attention(channels, heads)
        self.norm2 = nn.LayerNorm(channels)
        self.cross_attn = Attention(channels, heads, context_dim)
        self.norm3 = nn.LayerNorm(channels)
        self.ff = nn.Sequential(nn.Linear(channels, 2 * channels), nn.GELU(), nn.Linear(2 * channels, channels))

    def forward(self, x, context):
        b, c, h, w = x.shape
        z = self.norm(x).flatten(2).transpose(1, 2)  # [B, HW, C]
        z = z + self.self_attn(self.norm1(z))
        z = z + self.cross_attn(self.norm2(z), context)
        z = z + self.ff(self.norm3(z))
        return x + z.transpose(1, 2).reshape(b, c, h, w)


class LatentUNet(nn.Module):
    """ε-predictor: (sample [B, 4, H, W], timestep [B] or [1], encoder_hidden_states [B, L, context]) -> [B, 4, H, W].
    A timestep of shape [1] is broadcast over the batch, as diffusers' UNet2DConditionModel does."""

    def __init__(self, latent: int = 4, context_dim: int = 64, channels=(32, 64, 96)):
        super().__init__()
        c1, c2, c3 = channels
        emb = 128
        self.time_mlp = nn.Sequential(nn.Linear(c1, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.pool_query = nn.Parameter(torch.randn(1, 1, context_dim) * 0.02)
        self.pool = Attention(context_dim, 4)
        self.text_mlp = nn.Sequential(nn.Linear(context_dim, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.c1 = c1
        self.inp = nn.Conv2d(latent, c1, 3, padding=1)
        self.d1 = ResBlock(c1, c1, emb)
        self.down1 = nn.Conv2d(c1, c2, 3, stride=2, padding=1)
        self.d2 = ResBlock(c2, c2, emb)
        self.t2 = SpatialTransformer(c2, context_dim)
        self.down2 = nn.Conv2d(c2, c3, 3, stride=2, padding=1)
        self.mid1 = ResBlock(c3, c3, emb)
        self.tmid = SpatialTransformer(c3, context_dim)
        self.mid2 = ResBlock(c3, c3, emb)
        self.up2 = nn.ConvTranspose2d(c3, c2, 2, stride=2)
        self.u2 = ResBlock(2 * c2, c2, emb)
        self.tu2 = SpatialTransformer(c2, context_dim)
        self.up1 = nn.ConvTranspose2d(c2, c1, 2, stride=2)
        self.u1 = ResBlock(2 * c1, c1, emb)
        self.out_norm = nn.GroupNorm(8, c1)
        self.out = nn.Conv2d(c1, latent, 3, padding=1)

    def forward(self, sample, timestep, encoder_hidden_states):
        b = sample.shape[0]
        t = timestep.reshape(-1).expand(b)
        ctx = encoder_hidden_states
        pooled = self.pool(self.pool_query.expand(b, -1, -1), ctx)[:, 0]
        e = F.silu(self.time_mlp(timestep_embedding(t, self.c1)) + self.text_mlp(pooled))
        h1 = self.d1(self.inp(sample), e)
        h2 = self.t2(self.d2(self.down1(h1), e), ctx)
        m = self.mid1(self.down2(h2), e)
        m = self.mid2(self.tmid(m, ctx), e)
        u = self.tu2(self.u2(torch.cat([self.up2(m), h2], 1), e), ctx)
        u = self.u1(torch.cat([self.up1(u), h1], 1), e)
        return self.out(F.silu(self.out_norm(u)))


class Encoder(nn.Module):
    """Image [B, 3, 32, 32] -> (mean, log-variance) [B, latent, 16, 16] each."""

    def __init__(self, latent: int = 4, ch: int = 16):
        super().__init__()
        self.inp = nn.Conv2d(3, ch, 3, padding=1)
        self.down = nn.Conv2d(ch, 2 * ch, 3, stride=2, padding=1)
        self.r1 = ResBlock(2 * ch, 2 * ch)
        self.out = nn.Conv2d(2 * ch, 2 * latent, 3, padding=1)

    def forward(self, x):
        h = self.r1(self.down(F.silu(self.inp(x))))
        return self.out(F.silu(h)).chunk(2, dim=1)


class Decoder(nn.Module):
    """Latent [B, latent, 16, 16] -> image [B, 3, 32, 32] in about [-1, 1]."""

    def __init__(self, latent: int = 4, ch: int = 16):
        super().__init__()
        self.inp = nn.Conv2d(latent, 2 * ch, 3, padding=1)
        self.r1 = ResBlock(2 * ch, 2 * ch)
        self.up = nn.ConvTranspose2d(2 * ch, ch, 2, stride=2)
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)
        self.out = nn.Conv2d(ch, 3, 3, padding=1)

    def forward(self, z):
        h = self.up(F.silu(self.r1(self.inp(z))))
        return self.out(F.silu(self.conv(F.silu(h))))


class Verifier(nn.Module):
    """Image [B, 3, 32, 32] + caption token ids [B, L] -> match logit [B, 1], by counting. The image branch predicts,
    for every (colour, shape) pair, a distribution over how many such objects it shows (0..10, 10 meaning ten or
    more); the caption branch predicts the distribution the caption asks for (0 for pairs it does not name). A pair
    agrees with probability sum_c p_image(c) p_caption(c); the image matches with the product over pairs, and the
    score is that probability's logit. Both branches are trained on counts (cross-entropy), never on a match label,
    so the score is compositional: a wrong count of one group costs the same whatever the others are."""

    def __init__(self, vocab: int, max_length: int, width: int = 64, pairs: int = 12, counts: int = 11):
        super().__init__()
        self.cnn = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.SiLU(),
            nn.Conv2d(32, 48, 3, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(48, width, 3, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(width, width, 3, padding=1))
        self.image_position = nn.Parameter(torch.randn(64, width) * 0.02)
        self.norms = nn.ModuleList([nn.LayerNorm(width) for _ in range(4)])
        self.attn = nn.ModuleList([Attention(width, 4) for _ in range(2)])
        self.ffs = nn.ModuleList([nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, width))
                                  for _ in range(2)])
        self.image_counts = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, pairs * counts))
        self.text = TextEncoder(vocab, max_length, width, layers=3)  # binding a count and colour to a shape takes depth
        self.text_counts = nn.Linear(width, pairs * counts)
        self.pairs, self.counts = pairs, counts

    def forward(self, image, input_ids):
        image_logits, text_logits = self.count_logits(image, input_ids)
        agree = torch.logsumexp(F.log_softmax(image_logits, -1) + F.log_softmax(text_logits, -1), dim=-1)
        log_p = agree.sum(dim=1, keepdim=True).clamp(max=-1e-6)
        return log_p - torch.log(torch.clamp(1 - torch.exp(log_p), min=1e-12))

    def count_logits(self, image, input_ids):
        """(the image's count logits [B, pairs, counts], the caption's [B, pairs, counts])."""
        x = self.cnn(image).flatten(2).transpose(1, 2) + self.image_position  # [B, 64, width]
        for i in range(2):
            x = x + self.attn[i](self.norms[2 * i](x))
            x = x + self.ffs[i](self.norms[2 * i + 1](x))
        image_logits = self.image_counts(x.mean(dim=1)).view(-1, self.pairs, self.counts)
        _, pooled = self.text(input_ids)
        return image_logits, self.text_counts(pooled).view(-1, self.pairs, self.counts)
