"""Trains `counting`: a class-conditional ε-prediction DDPM that draws exactly n objects (n = 1..9).

Linear β schedule (1e-4 .. 0.02) over 1000 training steps, as in Ho et al. (2020). The condition is the
count n; id 0 is the null condition, dropped in 10% of training examples so the same network serves
classifier-free guidance (Ho & Salimans, 2022). The exported weights are an exponential moving average.

Run with Debian's interpreter: /usr/bin/python3 models/training/train_counting.py
Writes models/counting/{model.onnx,model.json}."""
import argparse
import copy
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

import export
import nets
import shapes

HERE = os.path.dirname(os.path.abspath(__file__))
TRAINING_STEPS = 1000
BETA_START, BETA_END = 1e-4, 0.02
NULL_ID = 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=4500)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--train-images", type=int, default=60000)
    p.add_argument("--seed", type=int, default=20261124)
    p.add_argument("--out", default=os.path.join(HERE, "..", "counting"))
    a = p.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(os.cpu_count() or 1)
    started = time.time()

    images, counts = shapes.batch(a.train_images, np.random.default_rng(a.seed + 2))
    images, counts = torch.from_numpy(images), torch.from_numpy(counts)
    print(f"data: {a.train_images} images ({time.time() - started:.0f}s)", flush=True)

    betas = torch.linspace(BETA_START, BETA_END, TRAINING_STEPS, dtype=torch.float64)
    alpha_bar = torch.cumprod(1 - betas, 0).float()

    model = nets.CountingUNet()
    ema = copy.deepcopy(model).eval()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-3, total_steps=a.steps, pct_start=0.05)
    gen = torch.Generator().manual_seed(a.seed)
    for step in range(a.steps):
        idx = torch.randint(0, len(images), (a.batch,), generator=gen)
        x0, cond = images[idx], counts[idx]
        if step % 2:
            x0 = x0.flip(3)
        if step % 3 == 0:
            x0 = x0.transpose(2, 3)
        cond = torch.where(torch.rand(a.batch, generator=gen) < 0.1, torch.full_like(cond, NULL_ID), cond)
        t = torch.randint(0, TRAINING_STEPS, (a.batch,), generator=gen)
        eps = torch.randn(x0.shape, generator=gen)
        ab = alpha_bar[t][:, None, None, None]
        xt = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
        loss = F.mse_loss(model(xt, t.float(), cond), eps)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        decay = min(0.999, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.mul_(decay).add_(pm, alpha=1 - decay)
        if step % 250 == 0 or step == a.steps - 1:
            print(f"step {step}/{a.steps} loss {loss.item():.4f} ({time.time() - started:.0f}s)", flush=True)

    seconds = time.time() - started
    params = sum(p.numel() for p in ema.parameters())
    print(f"trained {params} parameters in {seconds:.0f}s")
    s = shapes.IMAGE_SIZE
    export.export_onnx(ema, (torch.zeros(1, 1, s, s), torch.zeros(1), torch.zeros(1, dtype=torch.int64)),
                       os.path.join(a.out, "model.onnx"), ["x", "t", "condition"], ["eps"])
    export.write_manifest(a.out, {
        "name": "counting",
        "kind": "denoiser",
        "description": "Draws exactly n bright, separate objects on a black 24x24 background (n = 1..9).",
        "process": "gaussian",
        "prediction": "epsilon",
        "inputs": {
            "sample": export.tensor("x", "float32", [-1, 1, s, s]),
            "time": export.tensor("t", "float32", [-1]),
            "condition": export.tensor("condition", "int64", [-1]),
        },
        "outputs": {"prediction": export.tensor("eps", "float32", [-1, 1, s, s])},
        "schedule": {"beta": "linear", "trainingSteps": TRAINING_STEPS, "betaStart": BETA_START, "betaEnd": BETA_END},
        "condition": {"vocabulary": {str(n): n for n in range(1, shapes.MAX_COUNT + 1)}, "nullId": NULL_ID},
        "sampleRange": [-1.0, 1.0],
        "training": {"script": "models/training/train_counting.py", "seed": a.seed, "steps": a.steps,
                     "batch": a.batch, "parameters": params, "seconds": round(seconds)},
    })


if __name__ == "__main__":
    main()
