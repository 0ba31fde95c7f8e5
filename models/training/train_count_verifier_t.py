"""Trains `count-verifier-t`: a noise-aware classifier of the object count (`count-verifier`, trained on clean images
only by train_count_verifier.py, stays for callers that cannot pass a time, such as samples relayed by a worker).

It takes an image and the model time t at which that image was predicted (0 for a clean image) and gives logits over
the classes 0, 1, ..., 9 and "10+" (10 to 12 objects). The counts the denoiser is asked for are 1..9, but it draws
none or too many often enough that a verifier which never saw those would call an empty image "1" and an
eleven-object image "9".

Training data, half and half in every batch:
- clean procedural images (t = 0) labelled with their drawn count, which keeps the clean-image accuracy;
- what a search scores mid-trajectory, made by running the shipped `counting` denoiser (models/counting/model.onnx,
  its weights loaded into `nets.CountingUNet`): DDIM trajectories at eta 0.5 and guidance 2 (the bench's sampler) of
  N = 25 steps, whose times include the bench's evaluation steps 20, 30 and 40 of 50, with the x0-prediction of every
  step (at the time it was predicted at) and previews of j = 2 and 4 deterministic steps from every fifth step's state
  (at the time of the preview's last step). Each is labelled by the programmatic count of the clean image its
  trajectory ended in, so the verifier learns what a node will become (TTSnap's noise-aware reward, 2025), not what a
  blurry prediction looks like.

Run with Debian's interpreter: /usr/bin/python3 models/training/train_count_verifier_t.py --threads 1
Writes models/count-verifier-t/{model.onnx,model.json}; prints and records the accuracy per noise level."""
import argparse
import os
import time

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper

import export
import nets
import shapes

HERE = os.path.dirname(os.path.abspath(__file__))
MOST = 12  # the most objects drawn for training; 10..12 share the class "10+"
LABELS = [str(n) for n in range(0, shapes.MAX_COUNT + 1)] + [f"{shapes.MAX_COUNT + 1}+"]
CLASSES = len(LABELS)
STEPS, ETA, GUIDANCE = 25, 0.5, 2.0
PREVIEWS = (2, 4)
PREVIEW_EVERY = 5
# The levels the accuracy table reports for trajectory images: the time an image was predicted at, in training steps
# of 1000 (the clean images, t = 0, are reported on their own).
LEVELS = [(0, 100), (100, 300), (300, 500), (500, 700), (700, 1000)]

# GroupNorm's affine parameters lose their names in the ONNX export; they are the 26 constants `onnx::Mul_*` and
# `onnx::Add_*` in the order the forward pass uses the norms.
NORMS = ["d1.norm1", "d1.norm2", "d2.norm1", "d2.norm2", "mid1.norm1", "mid1.norm2", "mid2.norm1", "mid2.norm2",
         "u2.norm1", "u2.norm2", "u1.norm1", "u1.norm2", "out_norm"]


def load_denoiser(path: str) -> nets.CountingUNet:
    """The shipped denoiser: nets.CountingUNet with the ONNX file's weights."""
    init = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in onnx.load(path).graph.initializer}
    net = nets.CountingUNet()
    state = net.state_dict()
    loose = sorted((k for k in init if k.startswith("onnx::")), key=lambda k: int(k.rsplit("_", 1)[1]))
    if len(loose) != 2 * len(NORMS):
        raise SystemExit(f"{path}: expected {2 * len(NORMS)} unnamed GroupNorm constants, found {len(loose)}")
    for i, norm in enumerate(NORMS):
        init[f"{norm}.weight"] = init[loose[2 * i]].flatten()
        init[f"{norm}.bias"] = init[loose[2 * i + 1]].flatten()
    net.load_state_dict({k: init[k] for k in state})
    return net.eval()


class Sampler:
    """The engine's gaussian sampler for `counting`: linear beta, trailing spacing, x0 clipped to [-1, 1], DDIM."""

    def __init__(self, net):
        self.net = net
        betas = np.linspace(1e-4, 0.02, 1000)
        self.alpha_bar = np.cumprod(1 - betas)
        self.times = [round(1000 * (STEPS - i) / STEPS) - 1 for i in range(STEPS)]

    def level(self, index: int) -> float:
        return 1.0 if index >= STEPS else float(self.alpha_bar[self.times[index]])

    def predict(self, x, t: int, cond):
        """Guided ε and the clipped x0-prediction at time t."""
        b = len(x)
        tt = torch.full((2 * b,), float(t))
        out = self.net(torch.cat([x, x]), tt, torch.cat([cond, torch.zeros_like(cond)]))
        eps = out[b:] + GUIDANCE * (out[:b] - out[b:])
        a = self.alpha_bar[t]
        x0 = ((x - (1 - a) ** 0.5 * eps) / a ** 0.5).clamp(-1, 1)
        return (x - a ** 0.5 * x0) / (1 - a) ** 0.5, x0

    def step(self, x, t: int, cond, to: float, eta: float, gen):
        eps, x0 = self.predict(x, t, cond)
        a = self.alpha_bar[t]
        sigma = 0.0 if eta == 0 or to >= 1 else eta * ((1 - to) / (1 - a)) ** 0.5 * (1 - a / to) ** 0.5
        x = to ** 0.5 * x0 + max(0.0, 1 - to - sigma ** 2) ** 0.5 * eps
        if sigma > 0:
            x = x + sigma * torch.randn(x.shape, generator=gen)
        return x, x0

    def preview(self, x, i: int, j: int, cond):
        """j deterministic steps from step index i to the clean sample; the last x0-prediction and its time."""
        marks = [i + round(m * (STEPS - i) / j) for m in range(j + 1)]
        for a, b in zip(marks, marks[1:]):
            x, x0 = self.step(x, self.times[a], cond, self.level(b), 0.0, None)
        return x0, self.times[marks[-2]]


def trajectories(sampler: Sampler, count: int, batch: int, seed: int, log):
    """Images, times and outcome labels from `count` searched-like trajectories."""
    gen = torch.Generator().manual_seed(seed)
    images, times, labels = [], [], []
    for start in range(0, count, batch):
        b = min(batch, count - start)
        cond = torch.randint(1, 10, (b,), generator=gen)
        x = torch.randn((b, 1, shapes.IMAGE_SIZE, shapes.IMAGE_SIZE), generator=gen)
        seen, seen_t = [], []
        with torch.no_grad():
            for i in range(STEPS):
                if i > 0 and i % PREVIEW_EVERY == 0:
                    for j in PREVIEWS:
                        if j < STEPS - i:
                            p, t = sampler.preview(x, i, j, cond)
                            seen.append(p)
                            seen_t.append(t)
                x, x0 = sampler.step(x, sampler.times[i], cond, sampler.level(i + 1), ETA, gen)
                seen.append(x0)
                seen_t.append(sampler.times[i])
        outcome = torch.tensor([min(shapes.count_components(img[0]), CLASSES - 1) for img in x.clamp(-1, 1).numpy()])
        for img, t in zip(seen, seen_t):
            images.append(img)
            times.append(torch.full((b,), float(t)))
            labels.append(outcome)
        log(f"trajectories {start + b}/{count}: {sum(len(i) for i in images)} images")
    return torch.cat(images), torch.cat(times), torch.cat(labels)


def accuracy_by_level(model, x, t, y):
    """Per level in LEVELS that has images: (from, to, images, share whose predicted class is the label)."""
    with torch.no_grad():
        pred = torch.cat([model(x[i:i + 1000], t[i:i + 1000]).argmax(1) for i in range(0, len(x), 1000)])
    rows = []
    for lo, hi in LEVELS:
        sel = (t >= lo) & (t < hi)
        n = int(sel.sum())
        if n:
            rows.append((lo, hi, n, float((pred[sel] == y[sel]).float().mean())))
    return rows


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--train-images", type=int, default=30000)
    p.add_argument("--heldout-images", type=int, default=2000)
    p.add_argument("--trajectories", type=int, default=384)
    p.add_argument("--heldout-trajectories", type=int, default=64)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--seed", type=int, default=20261124)
    p.add_argument("--denoiser", default=os.path.join(HERE, "..", "counting", "model.onnx"))
    p.add_argument("--out", default=os.path.join(HERE, "..", "count-verifier-t"))
    a = p.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    started = time.time()

    def log(msg):
        print(f"{msg} ({time.time() - started:.0f}s)", flush=True)

    train_x, train_y = shapes.batch(a.train_images, np.random.default_rng(a.seed), min_count=0, max_count=MOST)
    held_x, held_y = shapes.batch(a.heldout_images, np.random.default_rng(a.seed + 1), min_count=0, max_count=MOST)
    train_x, train_y = torch.from_numpy(train_x), torch.from_numpy(np.minimum(train_y, CLASSES - 1))
    held_x, held_y = torch.from_numpy(held_x), torch.from_numpy(np.minimum(held_y, CLASSES - 1))
    log(f"clean data: {a.train_images} train, {a.heldout_images} held out")

    sampler = Sampler(load_denoiser(a.denoiser))
    traj_x, traj_t, traj_y = trajectories(sampler, a.trajectories, 256, a.seed + 2, log)
    hold_x, hold_t, hold_y = trajectories(sampler, a.heldout_trajectories, 256, a.seed + 3, log)

    model = nets.NoiseAwareCountClassifier(counts=CLASSES)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=a.steps, pct_start=0.1)
    gen = torch.Generator().manual_seed(a.seed)
    half = a.batch // 2
    for step in range(a.steps):
        ci = torch.randint(0, len(train_x), (half,), generator=gen)
        ti = torch.randint(0, len(traj_x), (a.batch - half,), generator=gen)
        x = torch.cat([train_x[ci], traj_x[ti]])
        t = torch.cat([torch.zeros(half), traj_t[ti]])
        y = torch.cat([train_y[ci], traj_y[ti]])
        # Flips and transposes keep the count; light noise on half the clean images keeps scores less brittle.
        if step % 2:
            x = x.flip(3)
        if step % 3 == 0:
            x = x.transpose(2, 3)
        light = (torch.rand(len(x), 1, 1, 1, generator=gen) < 0.5) & (t == 0)[:, None, None, None]
        x = x + 0.1 * torch.randn(x.shape, generator=gen) * light
        loss = F.cross_entropy(model(x, t), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 250 == 0 or step == a.steps - 1:
            log(f"step {step}/{a.steps} loss {loss.item():.4f}")

    model.eval()
    with torch.no_grad():
        clean_pred = torch.cat([model(held_x[i:i + 1000], torch.zeros(len(held_x[i:i + 1000]))).argmax(1) for i in range(0, len(held_x), 1000)])
    clean = (0, 0, len(held_y), float((clean_pred == held_y).float().mean()))
    levels = accuracy_by_level(model, hold_x, hold_t, hold_y)
    seconds = time.time() - started
    params = sum(p.numel() for p in model.parameters())
    print(f"clean held-out accuracy {clean[3]:.4f} over {clean[2]} images; {params} parameters; {seconds:.0f}s")
    for lo, hi, n, acc in levels:
        print(f"trajectory images predicted at t in [{lo}, {hi}): {n} images, outcome accuracy {acc:.4f}")

    s = shapes.IMAGE_SIZE
    export.export_onnx(model, (torch.zeros(1, 1, s, s), torch.zeros(1)),
                       os.path.join(a.out, "model.onnx"), ["image", "t"], ["logits"])
    export.write_manifest(a.out, {
        "name": "count-verifier-t",
        "kind": "verifier",
        "description": "Counts the objects (0..9, or 10+) a 24x24 image predicted at model time t will end with; scores an x0-prediction or preview by the probability of the requested count.",
        "inputs": {"sample": export.tensor("image", "float32", [-1, 1, s, s]),
                   "time": export.tensor("t", "float32", [-1])},
        "outputs": {"output": export.tensor("logits", "float32", [-1, CLASSES])},
        "scoring": {"rule": "class-probability", "labels": LABELS},
        "training": {"script": "models/training/train_count_verifier_t.py", "seed": a.seed, "steps": a.steps,
                     "parameters": params, "seconds": round(seconds), "heldOutAccuracy": round(clean[3], 4),
                     "heldOutImages": clean[2], "trajectories": a.trajectories,
                     "heldOutTrajectories": a.heldout_trajectories,
                     "outcomeAccuracyByTime": [{"from": lo, "to": hi, "images": n, "accuracy": round(acc, 4)}
                                               for lo, hi, n, acc in levels]},
    })


if __name__ == "__main__":
    main()
