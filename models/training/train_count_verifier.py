"""Trains `count-verifier`: a classifier of the object count on clean procedural images.

Classes are 0, 1, ..., 9 and "10+" (10 to 12 objects). The counts the denoiser is asked for are 1..9, but it
draws none or too many often enough that a verifier which never saw those would call an empty image "1" and an
eleven-object image "9".

Run with Debian's interpreter: /usr/bin/python3 models/training/train_count_verifier.py
Writes models/count-verifier/{model.onnx,model.json} and prints the held-out accuracy."""
import argparse
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

import export
import nets
import shapes

HERE = os.path.dirname(os.path.abspath(__file__))
MOST = 12  # the most objects drawn for training; 10..12 share the class "10+"
LABELS = [str(n) for n in range(0, shapes.MAX_COUNT + 1)] + [f"{shapes.MAX_COUNT + 1}+"]
CLASSES = len(LABELS)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--train-images", type=int, default=60000)
    p.add_argument("--heldout-images", type=int, default=5000)
    p.add_argument("--seed", type=int, default=20261124)
    p.add_argument("--out", default=os.path.join(HERE, "..", "count-verifier"))
    a = p.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(os.cpu_count() or 1)
    started = time.time()

    train_x, train_y = shapes.batch(a.train_images, np.random.default_rng(a.seed), min_count=0, max_count=MOST)
    held_x, held_y = shapes.batch(a.heldout_images, np.random.default_rng(a.seed + 1), min_count=0, max_count=MOST)
    train_x, train_y = torch.from_numpy(train_x), torch.from_numpy(np.minimum(train_y, CLASSES - 1))
    held_x, held_y = torch.from_numpy(held_x), torch.from_numpy(np.minimum(held_y, CLASSES - 1))
    print(f"data: {a.train_images} train, {a.heldout_images} held out ({time.time() - started:.0f}s)", flush=True)

    model = nets.CountClassifier(counts=CLASSES)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=a.steps, pct_start=0.1)
    gen = torch.Generator().manual_seed(a.seed)
    for step in range(a.steps):
        idx = torch.randint(0, len(train_x), (a.batch,), generator=gen)
        x, y = train_x[idx], train_y[idx]
        # Flips and transposes keep the count; light noise makes scores of x0-predictions less brittle.
        if step % 2:
            x = x.flip(3)
        if step % 3 == 0:
            x = x.transpose(2, 3)
        x = x + 0.1 * torch.randn(x.shape, generator=gen) * (torch.rand(len(x), 1, 1, 1, generator=gen) < 0.5)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 250 == 0 or step == a.steps - 1:
            print(f"step {step}/{a.steps} loss {loss.item():.4f} ({time.time() - started:.0f}s)", flush=True)

    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(held_x[i:i + 500]).argmax(1) for i in range(0, len(held_x), 500)])
    accuracy = (pred == held_y).float().mean().item()
    seconds = time.time() - started
    params = sum(p.numel() for p in model.parameters())
    print(f"held-out accuracy {accuracy:.4f} over {len(held_y)} images; {params} parameters; {seconds:.0f}s")

    export.export_onnx(model, (torch.zeros(1, 1, shapes.IMAGE_SIZE, shapes.IMAGE_SIZE),),
                       os.path.join(a.out, "model.onnx"), ["image"], ["logits"])
    s = shapes.IMAGE_SIZE
    export.write_manifest(a.out, {
        "name": "count-verifier",
        "kind": "verifier",
        "description": "Counts the objects (0..9, or 10+) in a 24x24 image; scores an x0-prediction by the probability of the requested count.",
        "inputs": {"sample": export.tensor("image", "float32", [-1, 1, s, s])},
        "outputs": {"output": export.tensor("logits", "float32", [-1, CLASSES])},
        "scoring": {"rule": "class-probability", "labels": LABELS},
        "training": {"script": "models/training/train_count_verifier.py", "seed": a.seed, "steps": a.steps,
                     "parameters": params, "seconds": round(seconds), "heldOutAccuracy": round(accuracy, 4),
                     "heldOutImages": len(held_y)},
    })


if __name__ == "__main__":
    main()
