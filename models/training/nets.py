"""The embedded networks: a small conditional U-Net denoiser, counting classifiers (clean and noise-aware), the Sudoku transformer."""
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


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, emb: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(8, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb, 2 * cout)
        self.norm2 = nn.GroupNorm(8, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, e):
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(e)[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift  # FiLM conditioning on time and count
        h = self.conv2(F.silu(h))
        return h + self.skip(x)


class CountingUNet(nn.Module):
    """ε-predictor: (x_t [B,1,H,W], t [B], condition [B] int64 with 0 = null) -> ε [B,1,H,W]."""

    def __init__(self, base: int = 32, classes: int = 10):
        super().__init__()
        emb = base * 4
        self.base = base
        self.time_mlp = nn.Sequential(nn.Linear(base, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.cond = nn.Embedding(classes, emb)
        c1, c2, c3 = base, base * 2, base * 2
        self.inp = nn.Conv2d(1, c1, 3, padding=1)
        self.d1 = ResBlock(c1, c1, emb)
        self.down1 = nn.Conv2d(c1, c2, 3, stride=2, padding=1)
        self.d2 = ResBlock(c2, c2, emb)
        self.down2 = nn.Conv2d(c2, c3, 3, stride=2, padding=1)
        self.mid1 = ResBlock(c3, c3, emb)
        self.mid2 = ResBlock(c3, c3, emb)
        self.up2 = nn.ConvTranspose2d(c3, c2, 2, stride=2)
        self.u2 = ResBlock(c2 * 2, c2, emb)
        self.up1 = nn.ConvTranspose2d(c2, c1, 2, stride=2)
        self.u1 = ResBlock(c1 * 2, c1, emb)
        self.out_norm = nn.GroupNorm(8, c1)
        self.out = nn.Conv2d(c1, 1, 3, padding=1)

    def forward(self, x, t, condition):
        e = self.time_mlp(timestep_embedding(t, self.base)) + self.cond(condition)
        e = F.silu(e)
        h1 = self.d1(self.inp(x), e)
        h2 = self.d2(self.down1(h1), e)
        h = self.mid2(self.mid1(self.down2(h2), e), e)
        h = self.u2(torch.cat([self.up2(h), h2], 1), e)
        h = self.u1(torch.cat([self.up1(h), h1], 1), e)
        return self.out(F.silu(self.out_norm(h)))


class CountClassifier(nn.Module):
    """Object counter: image [B,1,H,W] in [-1,1] -> logits [B,counts] for counts 0..counts-1.

    Global *sum* pooling of per-location features lets the head count object detections instead of
    averaging them away."""

    def __init__(self, width: int = 32, counts: int = 11):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, width * 2, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width * 2, width * 2, 3, padding=1), nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Linear(width * 2, 128), nn.ReLU(), nn.Linear(128, counts))

    def forward(self, x):
        h = self.features(x).sum(dim=(2, 3)) / 16.0
        return self.head(h)


class NoiseAwareCountClassifier(nn.Module):
    """Object counter for images predicted at model time t: (image [B,1,H,W] in [-1,1], t [B] in training steps,
    0 for a clean image) -> logits [B,counts] for counts 0..counts-1.

    The time enters as a constant input plane and, embedded, in the head, so the same features are read differently
    for a blurry early prediction and a clean sample. Global *sum* pooling of per-location features lets the head
    count object detections instead of averaging them away."""

    def __init__(self, width: int = 32, counts: int = 11, time_dim: int = 32):
        super().__init__()
        self.time_dim = time_dim
        self.features = nn.Sequential(
            nn.Conv2d(2, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, width * 2, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width * 2, width * 2, 3, padding=1), nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Linear(width * 2 + time_dim, 128), nn.ReLU(), nn.Linear(128, counts))

    def forward(self, x, t):
        plane = (t.float() / 1000.0)[:, None, None, None].expand(-1, 1, x.shape[2], x.shape[3])
        h = self.features(torch.cat([x, plane], 1)).sum(dim=(2, 3)) / 16.0
        return self.head(torch.cat([h, timestep_embedding(t, self.time_dim)], 1))


class PeerAttentionBlock(nn.Module):
    """Pre-norm transformer block whose attention is restricted by an additive mask (Sudoku peers)."""

    def __init__(self, dim: int, heads: int, ff: int):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, ff), nn.GELU(), nn.Linear(ff, dim))

    def forward(self, x, bias):
        b, n, d = x.shape
        h = self.heads
        q, k, v = self.qkv(self.norm1(x)).reshape(b, n, 3, h, d // h).permute(2, 0, 3, 1, 4)
        att = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(d // h)) + bias
        y = (att.softmax(-1) @ v).transpose(1, 2).reshape(b, n, d)
        x = x + self.proj(y)
        return x + self.ff(self.norm2(x))


class SudokuTransformer(nn.Module):
    """Masked-diffusion denoiser for 9x9 Sudoku: (tokens [B,81] int64 with 0 = mask, t [B] masked fraction)
    -> logits [B,81,10] over the token ids (id 0, the mask, is never a target).

    Cells carry learned row, column and box embeddings; half of the heads' attention in every block is
    restricted to a cell's peers (same row, column or box), the other half is global, which gives the
    network the puzzle's constraint graph as an inductive bias (cf. recurrent relational networks)."""

    def __init__(self, dim: int = 64, layers: int = 4, heads: int = 4, ff: int = 128, vocab: int = 10):
        super().__init__()
        import sudoku
        self.tok = nn.Embedding(vocab, dim)
        self.row = nn.Embedding(9, dim)
        self.col = nn.Embedding(9, dim)
        self.box = nn.Embedding(9, dim)
        self.time = nn.Sequential(nn.Linear(1, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.register_buffer("rows", torch.from_numpy(sudoku.ROW), persistent=False)
        self.register_buffer("cols", torch.from_numpy(sudoku.COL), persistent=False)
        self.register_buffer("boxes", torch.from_numpy(sudoku.BOX), persistent=False)
        peer = torch.from_numpy(sudoku.peers())
        local = torch.where(peer, torch.zeros(()), torch.full((), -1e4))
        bias = torch.stack([local if i < heads // 2 else torch.zeros_like(local) for i in range(heads)])
        self.register_buffer("bias", bias[None], persistent=False)
        self.blocks = nn.ModuleList([PeerAttentionBlock(dim, heads, ff) for _ in range(layers)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab)

    def forward(self, tokens, t):
        x = self.tok(tokens) + self.row(self.rows) + self.col(self.cols) + self.box(self.boxes)
        x = x + self.time(t.float()[:, None])[:, None, :]
        for block in self.blocks:
            x = block(x, self.bias)
        return self.head(self.norm(x))
