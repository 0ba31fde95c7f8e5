"""Trains `sudoku`: an absorbing-state (masked) discrete diffusion denoiser that fills 9x9 Sudoku blanks.

Each training example is a solved grid (see sudoku.py) with a random set of "givens" (20..60 cells, as in
puzzles of mixed difficulty) that are never masked; every other cell is masked independently with
probability t ~ U(0, 1] (at least one). The network sees the tokens (0 = mask) and t and is trained with
cross-entropy on the masked cells only, the MDLM / LLaDA objective without the 1/t weight (Sahoo et al.,
2024; Nie et al., 2025). At inference the givens are clamped and t is the fraction of blanks still masked.

Run with Debian's interpreter: /usr/bin/python3 models/training/train_sudoku.py
Writes models/sudoku/{model.onnx,model.json} (and a checkpoint beside them, not committed)."""
import argparse
import copy
import json
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

import export
import nets
import sudoku

HERE = os.path.dirname(os.path.abspath(__file__))
MASK_ID = 0
VOCAB = ["."] + [str(d) for d in range(1, 10)]


def make_batch(pool, rng, batch):
    grids = sudoku.augment(pool[rng.integers(0, len(pool), batch)], rng)
    givens = rng.integers(20, 61, batch)
    t = rng.uniform(0.0, 1.0, batch)
    order = rng.random((batch, sudoku.CELLS)).argsort(1)
    rank = order.argsort(1)  # rank of each cell in a random order: the first `givens` cells are given
    given = rank < givens[:, None]
    masked = (~given) & (rng.random((batch, sudoku.CELLS)) < t[:, None])
    # At least one masked cell per example: the blank with the smallest random rank above the givens.
    none = ~masked.any(1)
    masked[none, order[none, givens[none]]] = True
    blanks = (~given).sum(1)
    frac = masked.sum(1) / blanks
    tokens = np.where(masked, MASK_ID, grids)
    return (torch.from_numpy(tokens), torch.from_numpy(frac.astype(np.float32)),
            torch.from_numpy(grids), torch.from_numpy(masked))


@torch.no_grad()
def solve_rate(model, puzzles, steps):
    """Single pass: confidence top-k unmasking on a linear schedule, argmax tokens (the C# default)."""
    tokens = puzzles.clone()
    blanks = (puzzles == MASK_ID)
    total = blanks.sum(1)
    for i in range(steps):
        masked = tokens == MASK_ID
        left = masked.sum(1)
        t = left.float() / total.float()
        logits = model(tokens, t)
        logits[:, :, MASK_ID] = -1e9
        prob, digit = logits.softmax(-1).max(-1)
        target_left = (total.float() * (1 - (i + 1) / steps)).floor().long()
        k = (left - target_left).clamp(min=0)
        conf = torch.where(masked, prob, torch.full_like(prob, -1.0))
        ranked = conf.argsort(1, descending=True).argsort(1)
        unmask = masked & (ranked < k[:, None])
        tokens = torch.where(unmask, digit, tokens)
    return float(np.mean([sudoku.violations(g) == 0 for g in tokens.numpy()]))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=1800)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--base-grids", type=int, default=20000)
    p.add_argument("--max-seconds", type=float, default=1800, help="stop early (and export) after this long")
    p.add_argument("--seed", type=int, default=20261124)
    p.add_argument("--out", default=os.path.join(HERE, "..", "sudoku"))
    p.add_argument("--stop-at", type=int, help="stop after this many steps of the --steps schedule (reproduces a capped run)")
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate of the one-cycle schedule")
    p.add_argument("--resume", help="continue from a checkpoint.pt this script wrote (its steps and seconds are added up)")
    a = p.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(os.cpu_count() or 1)
    started = time.time()
    rng = np.random.default_rng(a.seed)
    pool = np.stack([sudoku.solved_grid(rng) for _ in range(a.base_grids)])
    # Held-out puzzles from fresh grids (another seed): 25..50 givens, blanks masked.
    erng = np.random.default_rng(a.seed + 1)
    eval_grids = np.stack([sudoku.solved_grid(erng) for _ in range(200)])
    eval_givens = np.repeat([25, 30, 35, 40, 45, 50], 34)[:200]
    keep = erng.random((200, 81)).argsort(1).argsort(1) < eval_givens[:, None]
    eval_puzzles = torch.from_numpy(np.where(keep, eval_grids, MASK_ID))
    print(f"data: {a.base_grids} base grids ({time.time() - started:.0f}s)", flush=True)

    model = nets.SudokuTransformer()
    previous = {"steps": 0, "seconds": 0, "runs": []}
    if a.resume:
        checkpoint = torch.load(a.resume)
        if "state" in checkpoint:
            model.load_state_dict(checkpoint["state"])
            previous = checkpoint["training"]
        else:  # a bare state dict: its run's steps and seconds are in the model.json beside it
            model.load_state_dict(checkpoint)
            with open(os.path.join(os.path.dirname(a.resume), "model.json")) as f:
                done = json.load(f)["training"]
            previous = {"steps": done["steps"], "seconds": done["seconds"],
                        "runs": [{"steps": done["steps"], "seconds": done["seconds"], "lr": 2e-3}]}
        # A resumed run draws fresh batches: a different stream from the same seed.
        rng = np.random.default_rng([a.seed, previous["steps"]])
        print(f"resumed from {a.resume}: {previous['steps']} steps, {previous['seconds']}s", flush=True)
    ema = copy.deepcopy(model).eval()
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=a.steps, pct_start=0.05)
    trained = 0
    for step in range(a.steps):
        tokens, t, grids, masked = make_batch(pool, rng, a.batch)
        logits = model(tokens, t)
        loss = F.cross_entropy(logits[masked], grids[masked])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        decay = min(0.999, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.mul_(decay).add_(pm, alpha=1 - decay)
        trained = step + 1
        elapsed = time.time() - started
        if step % 250 == 0 or step == a.steps - 1:
            print(f"step {step}/{a.steps} loss {loss.item():.4f} ({elapsed:.0f}s)", flush=True)
        if step % 600 == 599:
            print(f"  held-out single-pass solve rate (16 steps): {solve_rate(ema, eval_puzzles, 16):.3f}", flush=True)
        if a.stop_at is not None and trained >= a.stop_at:
            print(f"stopping after {trained} steps (--stop-at)", flush=True)
            break
        if elapsed > a.max_seconds:
            print(f"stopping at the {a.max_seconds:.0f}s cap after {trained} steps", flush=True)
            break

    seconds = time.time() - started
    params = sum(p.numel() for p in ema.parameters())
    print(f"trained {params} parameters in {seconds:.0f}s; held-out single-pass solve rate (16 steps): "
          f"{solve_rate(ema, eval_puzzles, 16):.3f}", flush=True)
    os.makedirs(a.out, exist_ok=True)
    runs = previous["runs"] + [{"steps": trained, "seconds": round(seconds), "lr": a.lr}]
    training = {"steps": previous["steps"] + trained, "seconds": previous["seconds"] + round(seconds), "runs": runs}
    torch.save({"state": ema.state_dict(), "training": training}, os.path.join(a.out, "checkpoint.pt"))
    export_model(ema, a.out, {"script": "models/training/train_sudoku.py", "seed": a.seed, "batch": a.batch,
                              "parameters": params, **training})


def export_model(ema, out, training):
    export.export_onnx(ema, (torch.zeros(1, sudoku.CELLS, dtype=torch.int64), torch.ones(1)),
                       os.path.join(out, "model.onnx"), ["tokens", "t"], ["logits"])
    export.write_manifest(out, {
        "name": "sudoku",
        "kind": "denoiser",
        "description": "Fills the blanks of a 9x9 Sudoku (tokens 1..9, 0 = mask) given the clamped givens.",
        "process": "masked",
        "prediction": "logits",
        "inputs": {
            "sample": export.tensor("tokens", "int64", [-1, sudoku.CELLS]),
            "time": export.tensor("t", "float32", [-1]),
        },
        "outputs": {"prediction": export.tensor("logits", "float32", [-1, sudoku.CELLS, len(VOCAB)])},
        "tokens": {"vocabulary": VOCAB, "maskId": MASK_ID},
        "training": training,
    })


if __name__ == "__main__":
    main()
