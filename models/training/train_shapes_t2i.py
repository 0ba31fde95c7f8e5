"""Trains `shapes-t2i`: a small text-to-image latent diffusion family for compositional prompts ("three red circles
and two blue squares"), exported in the diffusers ONNX layout, plus a learned image-caption verifier.

Stages, all from one seed: data (compositions.py) -> CLIP-style BPE tokenizer (clip_bpe.py) -> KL autoencoder and
its scaling factor -> text encoder and latent U-Net trained together on the ε objective (Ho et al., 2020) with the
caption dropped to the empty prompt for 10% of examples, so one network serves classifier-free guidance (Ho &
Salimans, 2022), exported as an exponential moving average -> the verifier, trained on real, reconstructed and
generated images (the last labelled by the programmatic judge) -> ONNX export -> single-shot evaluation with the
torch models and the Python judge on seen and held-out combinations.

Run with Debian's interpreter: /usr/bin/python3 models/training/train_shapes_t2i.py
Writes models/shapes-t2i/ (see models/README.md for the layout).
"""
import argparse
import copy
import json
import os
import shutil
import time

import numpy as np
import onnx
import torch
import torch.nn.functional as F

import clip_bpe
import compositions
import export
import t2i_nets

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_LENGTH = 16
LATENT = 4
UNET_CHANNELS = (32, 64, 64)
TRAIN_TIMESTEPS = 1000
MIN_SNR_GAMMA = 5.0
PAIRS = [(c, sh) for c in compositions.COLORS for sh in compositions.SHAPES]
BETA_START, BETA_END = 0.00085, 0.012  # "scaled_linear", as Stable Diffusion 1.x
DIFFUSERS_VERSION = "0.30.0"


def alphas_cumprod():
    betas = torch.linspace(BETA_START ** 0.5, BETA_END ** 0.5, TRAIN_TIMESTEPS, dtype=torch.float64) ** 2
    return torch.cumprod(1 - betas, 0).float()


def ddim_timesteps(steps: int):
    """diffusers' DDIMScheduler with timestep_spacing 'leading' and steps_offset 1."""
    ratio = TRAIN_TIMESTEPS // steps
    return [int(t) for t in (np.arange(0, steps) * ratio)[::-1] + 1], ratio


@torch.no_grad()
def sample(unet, text_states, empty_states, guidance, steps, generator, ab):
    """DDIM (η = 0) with classifier-free guidance; returns scaled latents [B, 4, 16, 16]."""
    b = text_states.shape[0]
    x = torch.randn((b, LATENT, 16, 16), generator=generator)
    timesteps, ratio = ddim_timesteps(steps)
    ctx = torch.cat([empty_states.expand(b, -1, -1), text_states])
    for t in timesteps:
        eps_u, eps_c = unet(torch.cat([x, x]), torch.full((2 * b,), float(t)), ctx).chunk(2)
        eps = eps_u + guidance * (eps_c - eps_u)
        a = ab[t]
        a_prev = ab[t - ratio] if t - ratio >= 0 else ab[0]  # set_alpha_to_one = false
        x0 = (x - (1 - a).sqrt() * eps) / a.sqrt()
        x = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
    return x


def perturb(groups, rng):
    """A caption that differs from the groups in one way: a count, a colour, a shape, a binding, a group more or
    less. Never a held-out triple, never equal to the original."""
    colors, shapes = list(compositions.COLORS), list(compositions.SHAPES)
    while True:
        g = [list(x) for x in groups]
        kind = rng.integers(7)
        i = int(rng.integers(len(g)))
        if kind == 0:
            g[i][0] = int(np.clip(g[i][0] + rng.choice([-2, -1, 1, 2]), 1, 9))
        elif kind == 1:
            g[i][0] = int(rng.integers(1, 10))
        elif kind == 2:
            g[i][1] = colors[rng.integers(len(colors))]
        elif kind == 3:
            g[i][2] = shapes[rng.integers(len(shapes))]
        elif kind == 4 and len(g) > 1:
            j = int(rng.integers(len(g)))
            g[i][1], g[j][1] = g[j][1], g[i][1]
        elif kind == 5 and len(g) > 1:
            del g[i]
        elif kind == 6 and len(g) < 3:
            g.append([int(rng.integers(1, 10)), colors[rng.integers(len(colors))], shapes[rng.integers(len(shapes))]])
        new = [tuple(x) for x in g]
        keys = [(c, s) for _, c, s in new]
        if (len(set(keys)) == len(keys) and sorted(new) != sorted(groups)
                and not any(x in compositions.HELD_OUT for x in new)):
            return new


def train_vae(images, a, gen, log):
    enc, dec = t2i_nets.Encoder(LATENT), t2i_nets.Decoder(LATENT)
    params = list(enc.parameters()) + list(dec.parameters())
    opt = torch.optim.AdamW(params, lr=2e-3, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=a.vae_steps, pct_start=0.05)
    for step in range(a.vae_steps):
        x = images[torch.randint(0, len(images), (a.batch,), generator=gen)]
        mean, logvar = enc(x)
        logvar = logvar.clamp(-20, 10)
        z = mean + (0.5 * logvar).exp() * torch.randn(mean.shape, generator=gen)
        rec = dec(z)
        kl = 0.5 * (mean ** 2 + logvar.exp() - 1 - logvar).mean()
        loss = F.mse_loss(rec, x) + 0.5 * F.l1_loss(rec, x) + a.kl_weight * kl
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 250 == 0 or step == a.vae_steps - 1:
            log(f"vae step {step}/{a.vae_steps} loss {loss.item():.4f} kl {kl.item():.2f}")
    return enc.eval(), dec.eval()


@torch.no_grad()
def encode_all(enc, images):
    means, logvars = [], []
    for i in range(0, len(images), 1000):
        m, lv = enc(images[i:i + 1000])
        means.append(m)
        logvars.append(lv.clamp(-20, 10))
    return torch.cat(means), torch.cat(logvars)


def scaling_factor(enc, images, gen):
    """1 / the standard deviation of sampled latents of the first 5,000 images (Stable Diffusion's recipe)."""
    mean, logvar = encode_all(enc, images[:5000])
    z = mean + (0.5 * logvar).exp() * torch.randn(mean.shape, generator=gen)
    return float(f"{1.0 / z.std().item():.5g}")


def load_checkpoint(path, tok, gen, times, log):
    """The autoencoder, text encoder and U-Net of an earlier run of this script with the same seed and data (its
    --checkpoint), so the later stages (verifier, export, evaluation) can be run again without retraining."""
    ck = torch.load(path)
    if ck["merges"] != tok.merges:
        raise SystemExit(f"{path}: its tokenizer differs from this data's; was it trained with another --seed or --images?")
    text, unet = t2i_nets.TextEncoder(len(tok.vocab), MAX_LENGTH), t2i_nets.LatentUNet(LATENT, 64, UNET_CHANNELS)
    enc, dec = t2i_nets.Encoder(LATENT), t2i_nets.Decoder(LATENT)
    for model, key in ((text, "text"), (unet, "unet"), (enc, "enc"), (dec, "dec")):
        model.load_state_dict(ck[key])
        model.eval()
    gen.set_state(ck["generator"])
    times.update({k: v for k, v in ck["seconds"].items() if k in ("vae", "unet")})
    log(f"checkpoint {path}: U-Net after {ck['unetSteps']} steps")
    return text, unet, enc, dec, ck["scale"], ck["unetSteps"]


def train_unet(enc, images, ids, empty_ids, scale, a, gen, vocab, log, deadline):
    latent_mean, latent_logvar = encode_all(enc, images)
    text = t2i_nets.TextEncoder(vocab, MAX_LENGTH)
    unet = t2i_nets.LatentUNet(LATENT, 64, UNET_CHANNELS)
    ema_text, ema_unet = copy.deepcopy(text).eval(), copy.deepcopy(unet).eval()
    params = list(text.parameters()) + list(unet.parameters())
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=a.unet_steps, pct_start=0.05)
    ab = alphas_cumprod()
    steps_done = 0
    for step in range(a.unet_steps):
        idx = torch.randint(0, len(ids), (a.batch,), generator=gen)
        noise = torch.randn(latent_mean[idx].shape, generator=gen)
        z0 = (latent_mean[idx] + (0.5 * latent_logvar[idx]).exp() * noise) * scale
        tok = ids[idx].clone()
        drop = torch.rand(a.batch, generator=gen) < 0.1
        tok[drop] = empty_ids
        t = torch.randint(0, TRAIN_TIMESTEPS, (a.batch,), generator=gen)
        eps = torch.randn(z0.shape, generator=gen)
        abt = ab[t][:, None, None, None]
        zt = abt.sqrt() * z0 + (1 - abt).sqrt() * eps
        states, _ = text(tok)
        snr = abt[:, 0, 0, 0] / (1 - abt[:, 0, 0, 0])
        weight = snr.clamp(max=MIN_SNR_GAMMA) / snr  # Min-SNR-γ (Hang et al., 2023) for the ε objective
        loss = (weight * ((unet(zt, t.float(), states) - eps) ** 2).mean(dim=(1, 2, 3))).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        decay = min(0.999, (1 + step) / (10 + step))
        with torch.no_grad():
            for ema, model in ((ema_text, text), (ema_unet, unet)):
                for pe, pm in zip(ema.parameters(), model.parameters()):
                    pe.mul_(decay).add_(pm, alpha=1 - decay)
        steps_done = step + 1
        if step % 250 == 0 or step == a.unet_steps - 1:
            log(f"unet step {step}/{a.unet_steps} loss {loss.item():.4f}")
        if steps_done == a.unet_stop_at or time.time() > deadline:
            log(f"unet stopped after {steps_done} of {a.unet_steps} scheduled steps")
            break
    return ema_text, ema_unet, steps_done


@torch.no_grad()
def generate(text, unet, dec, tok, captions, scale, guidance, steps, seed, batch=200):
    """One image per caption, [N, 3, 32, 32]."""
    ab = alphas_cumprod()
    empty, _ = text(torch.tensor([tok.encode("")]))
    gen = torch.Generator().manual_seed(seed)
    out = []
    for i in range(0, len(captions), batch):
        states, _ = text(torch.tensor([tok.encode(c) for c in captions[i:i + batch]]))
        z = sample(unet, states, empty, guidance, steps, gen, ab)
        out.append(dec(z / scale).clamp(-1, 1))
    return torch.cat(out)


def hindsight(found):
    """The groups a generated image shows, when a caption can say them: 1-3 groups of one to nine objects, no held-out
    triple (those stay unseen in training). None otherwise."""
    groups = [(n, color, shape) for (color, shape), n in sorted(found.items())]
    if not 1 <= len(groups) <= 3 or any(n > 9 for n, _, _ in groups) or any(g in compositions.HELD_OUT for g in groups):
        return None
    return groups


def count_targets(found):
    """Per (colour, shape) pair, the number of objects (10 means ten or more): what the verifier's branches predict."""
    return torch.tensor([min(found.get(pair, 0), 10) for pair in PAIRS])


def train_verifier(images, recon, groups, generated, a, gen, rng, tok, vocab, log):
    """Counting, not matching: half of each batch is real (or reconstructed) images with their true per-pair counts,
    half generated images with the counts the judge found in them, so the image branch counts what the U-Net draws;
    the caption branch learns each caption's counts from training captions (no held-out triple), a third of them
    perturbed so that near-miss captions are parsed as well. Neither branch ever sees a match label."""
    gen_images, gen_found = generated
    real_counts = torch.stack([count_targets({(c, sh): n for n, c, sh in g}) for g in groups])
    gen_counts = torch.stack([count_targets(f) for f in gen_found])
    model = t2i_nets.Verifier(vocab, MAX_LENGTH, pairs=len(PAIRS))
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=a.verifier_steps, pct_start=0.05)
    half = a.batch // 2
    for step in range(a.verifier_steps):
        idx = torch.randint(0, len(images), (half,), generator=gen).tolist()
        gidx = torch.randint(0, len(gen_images), (half,), generator=gen).tolist() if len(gen_images) else idx
        pool = (gen_images, gen_counts) if len(gen_images) else (images, real_counts)
        x = torch.cat([torch.stack([(recon if rng.random() < 0.5 else images)[i] for i in idx]), pool[0][gidx]])
        x = x + 0.05 * rng.random() * torch.randn(x.shape, generator=gen)
        counts = torch.cat([real_counts[idx], pool[1][gidx]])
        texts = [compositions.sample_groups(rng) for _ in range(a.batch)]
        texts = [perturb(g, rng) if rng.random() < 1 / 3 else g for g in texts]
        text_counts = torch.stack([count_targets({(c, sh): n for n, c, sh in g}) for g in texts])
        ids = torch.tensor([tok.encode(compositions.caption(g)) for g in texts])
        image_logits, text_logits = model.count_logits(x, ids)
        loss = F.cross_entropy(image_logits.flatten(0, 1), counts.flatten()) + F.cross_entropy(
            text_logits.flatten(0, 1), text_counts.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 250 == 0 or step == a.verifier_steps - 1:
            log(f"verifier step {step}/{a.verifier_steps} loss {loss.item():.4f}")
    return model.eval()


@torch.no_grad()
def verifier_picks(text, unet, dec, verifier, tok, scale, a, log, k=4):
    """What search needs from the verifier: k samples per prompt, judged; how often the first sample, the verifier's
    pick and the best of the k (an oracle) are right, on seen and held-out prompts."""
    rng = np.random.default_rng(a.seed + 17)
    prompts = a.pick_prompts
    out = {}
    for split, mode in (("seen", "exclude"), ("held-out", "require")):
        captions = [compositions.caption(compositions.sample_groups(rng, mode)) for _ in range(prompts)]
        images = generate(text, unet, dec, tok, [c for c in captions for _ in range(k)], scale, a.guidance,
                          a.eval_steps, a.seed + 19)
        right = np.array([compositions.judge(img.numpy(), c)["match"]
                          for img, c in zip(images, [c for c in captions for _ in range(k)])]).reshape(prompts, k)
        scores = verifier(images, torch.tensor([tok.encode(c) for c in captions for _ in range(k)]))[:, 0]
        pick = scores.view(prompts, k).argmax(dim=1).numpy()
        out[split] = {"first": float(right[:, 0].mean()), "verifierPick": float(right[np.arange(prompts), pick].mean()),
                      "oracle": float(right.any(axis=1).mean()), "prompts": prompts, "k": k}
        log(f"verifier picks, {split}: " + ", ".join(f"{key} {v}" for key, v in out[split].items()))
    return out


@torch.no_grad()
def verifier_on_generated(text, unet, dec, verifier, tok, scale, a, count=400):
    """The verifier's accuracy on fresh generated images that a caption can describe, each paired with that caption
    or (half of them) a perturbed one: what search needs it to tell apart."""
    rng = np.random.default_rng(a.seed + 13)
    prompts = [compositions.caption(compositions.sample_groups(rng)) for _ in range(count)]
    imgs = generate(text, unet, dec, tok, prompts, scale, a.guidance, a.generate_steps, a.seed + 15)
    pairs = []
    for img, prompt in zip(imgs, prompts):
        truth = hindsight(compositions.judge(img.numpy(), prompt)["found"])
        if truth is not None:
            right = bool(rng.random() < 0.5)
            pairs.append((img, compositions.caption(truth if right else perturb(truth, rng)), right))
    if not pairs:
        return 0.0, 0
    scores = verifier(torch.stack([p[0] for p in pairs]), torch.tensor([tok.encode(p[1]) for p in pairs]))[:, 0]
    return float(np.mean([(sc > 0) == p[2] for sc, p in zip(scores.tolist(), pairs)])), len(pairs)


onnx_export = export.export_onnx_axes
write_json = export.write_json


def export_family(out, tok, text, unet, enc, dec, verifier, scale, meta):
    if os.path.isdir(out):
        shutil.rmtree(out)
    tok.save(os.path.join(out, "tokenizer"))
    vocab = len(tok.vocab)
    ids = torch.tensor([tok.encode("two red circles and one blue square")], dtype=torch.int32)
    # The names, dtypes and dynamic axes of diffusers' scripts/convert_stable_diffusion_checkpoint_to_onnx.py.
    onnx_export(text, (ids,), os.path.join(out, "text_encoder", "model.onnx"), ["input_ids"],
                ["last_hidden_state", "pooler_output"], {"input_ids": {0: "batch", 1: "sequence"}})
    onnx_export(unet, (torch.randn(2, LATENT, 16, 16), torch.randn(2), torch.randn(2, MAX_LENGTH, 64)),
                os.path.join(out, "unet", "model.onnx"), ["sample", "timestep", "encoder_hidden_states"], ["out_sample"],
                {"sample": {0: "batch", 1: "channels", 2: "height", 3: "width"}, "timestep": {0: "batch"},
                 "encoder_hidden_states": {0: "batch", 1: "sequence"}})

    class VaeEncoder(torch.nn.Module):  # the posterior's mean: deterministic (diffusers' export samples)
        def __init__(self):
            super().__init__()
            self.enc = enc

        def forward(self, sample):
            return self.enc(sample)[0]

    onnx_export(VaeEncoder(), (torch.randn(1, 3, 32, 32),), os.path.join(out, "vae_encoder", "model.onnx"),
                ["sample"], ["latent_sample"], {"sample": {0: "batch", 1: "channels", 2: "height", 3: "width"}})
    onnx_export(dec, (torch.randn(1, LATENT, 16, 16),), os.path.join(out, "vae_decoder", "model.onnx"),
                ["latent_sample"], ["sample"], {"latent_sample": {0: "batch", 1: "channels", 2: "height", 3: "width"}})

    write_json(os.path.join(out, "model_index.json"), {
        "_class_name": "OnnxStableDiffusionPipeline",
        "_diffusers_version": DIFFUSERS_VERSION,
        "feature_extractor": [None, None],
        "requires_safety_checker": False,
        "safety_checker": [None, None],
        "scheduler": ["diffusers", "DDIMScheduler"],
        "text_encoder": ["diffusers", "OnnxRuntimeModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "OnnxRuntimeModel"],
        "vae_decoder": ["diffusers", "OnnxRuntimeModel"],
        "vae_encoder": ["diffusers", "OnnxRuntimeModel"],
    })
    write_json(os.path.join(out, "scheduler", "scheduler_config.json"), {
        "_class_name": "DDIMScheduler",
        "_diffusers_version": DIFFUSERS_VERSION,
        "beta_end": BETA_END,
        "beta_schedule": "scaled_linear",
        "beta_start": BETA_START,
        "clip_sample": False,
        "num_train_timesteps": TRAIN_TIMESTEPS,
        "prediction_type": "epsilon",
        "set_alpha_to_one": False,
        "steps_offset": 1,
        "timestep_spacing": "leading",
        "trained_betas": None,
    })
    # Per-component config.json, as Optimum's exporter writes them (the VAE's scaling factor lives here).
    write_json(os.path.join(out, "text_encoder", "config.json"), {
        "architectures": ["CLIPTextModel"],
        "model_type": "clip_text_model",
        "vocab_size": vocab,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "max_position_embeddings": MAX_LENGTH,
        "hidden_act": "gelu",
        "layer_norm_eps": 1e-5,
        "bos_token_id": tok.bos,
        "eos_token_id": tok.eos,
        "pad_token_id": tok.eos,
    })
    write_json(os.path.join(out, "unet", "config.json"), {
        "_class_name": "UNet2DConditionModel",
        "_diffusers_version": DIFFUSERS_VERSION,
        "in_channels": LATENT,
        "out_channels": LATENT,
        "sample_size": 16,
        "cross_attention_dim": 64,
        "block_out_channels": list(UNET_CHANNELS),
        "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
        "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    })
    vae_config = {
        "_class_name": "AutoencoderKL",
        "_diffusers_version": DIFFUSERS_VERSION,
        "in_channels": 3,
        "out_channels": 3,
        "latent_channels": LATENT,
        "sample_size": 32,
        "scaling_factor": scale,
        "block_out_channels": [16, 32],
        "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D"],
        "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D"],
    }
    write_json(os.path.join(out, "vae_encoder", "config.json"), vae_config)
    write_json(os.path.join(out, "vae_decoder", "config.json"), vae_config)

    vdir = os.path.join(out, "verifier")
    onnx_export(verifier, (torch.zeros(2, 3, 32, 32), torch.tensor([tok.encode("one red circle")] * 2)),
                os.path.join(vdir, "model.onnx"), ["image", "input_ids"], ["score"],
                {"image": {0: "batch"}, "input_ids": {0: "batch"}, "score": {0: "batch"}})
    export.write_manifest(vdir, {
        "name": "verifier",
        "kind": "verifier",
        "description": "Scores how well a 32x32 RGB image in [-1, 1] matches a caption of the shapes-t2i family "
                       "(its tokenizer, padded to 16 tokens); higher is a better match (a logit).",
        "inputs": {
            "sample": export.tensor("image", "float32", [-1, 3, 32, 32]),
            "prompt": export.tensor("input_ids", "int64", [-1, MAX_LENGTH]),
        },
        "outputs": {"output": export.tensor("score", "float32", [-1, 1])},
        "scoring": {"rule": "scalar"},
        "tokenizer": "../tokenizer",
        "training": meta["verifier"],
    })


def evaluate(text, unet, dec, verifier, tok, scale, a, log):
    """Single-shot accuracy per axis on seen and held-out prompts, with the torch models and the Python judge."""
    rng = np.random.default_rng(a.seed + 7)
    results = {}
    for split, mode in (("seen", "exclude"), ("held-out", "require")):
        captions = [compositions.caption(compositions.sample_groups(rng, mode)) for _ in range(a.eval_prompts)]
        images = generate(text, unet, dec, tok, captions, scale, a.guidance, a.eval_steps, a.seed + 11)
        verdicts = [compositions.judge(img.numpy(), c) for img, c in zip(images, captions)]
        with torch.no_grad():
            scores = verifier(images, torch.tensor([tok.encode(c) for c in captions]))[:, 0]
        agree = np.mean([(s > 0) == v["match"] for s, v in zip(scores.tolist(), verdicts)])
        row = {axis: float(np.mean([v[axis] for v in verdicts])) for axis in ("count", "color", "shape", "match")}
        sizes = [len(compositions.parse(c)) for c in captions]
        row["matchByGroups"] = {str(k): float(np.mean([v["match"] for v, n in zip(verdicts, sizes) if n == k]))
                                for k in sorted(set(sizes))}
        row["prompts"] = len(captions)
        row["verifierAgrees"] = float(agree)
        results[split] = row
        log(f"{split}: " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))
    return results


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--images", type=int, default=20000)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--vae-steps", type=int, default=2000)
    p.add_argument("--kl-weight", type=float, default=1e-4)
    p.add_argument("--unet-steps", type=int, default=8000)
    p.add_argument("--unet-stop-at", type=int, default=None, help="stop the U-Net after this many steps (schedule unchanged)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--verifier-steps", type=int, default=4000)
    p.add_argument("--generated", type=int, default=2500, help="generated images for the verifier")
    p.add_argument("--generate-steps", type=int, default=20)
    p.add_argument("--eval-prompts", type=int, default=200, help="per split (seen, held-out)")
    p.add_argument("--eval-steps", type=int, default=30)
    p.add_argument("--pick-prompts", type=int, default=96, help="per split, four samples each, for the verifier's picks")
    p.add_argument("--guidance", type=float, default=2.0)
    p.add_argument("--seed", type=int, default=20261201)
    p.add_argument("--max-seconds", type=float, default=4800, help="stops the U-Net stage at this many seconds since the start")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads (1 is faster on a busy machine)")
    p.add_argument("--out", default=os.path.join(HERE, "..", "shapes-t2i"))
    p.add_argument("--checkpoint", default=None, help="save the torch models here after the U-Net (not committed)")
    p.add_argument("--from-checkpoint", default=None, help="skip the autoencoder and U-Net: load them from a --checkpoint")
    a = p.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    started = time.time()
    times = {}

    def log(msg):
        print(f"[{time.time() - started:6.0f}s] {msg}", flush=True)

    mark = [started]

    def lap(name):
        times[name] = round(time.time() - mark[0])
        mark[0] = time.time()

    rng = np.random.default_rng(a.seed)
    images_np, captions = compositions.dataset(a.images, rng)
    groups = [sorted((n, c, s) for (c, s), n in compositions.parse(x).items()) for x in captions]
    images = torch.from_numpy(images_np)
    log(f"data: {len(captions)} images, {len(set(captions))} distinct captions")
    lap("data")

    tok = clip_bpe.Tokenizer(clip_bpe.train(captions), MAX_LENGTH)
    ids = torch.tensor([tok.encode(c) for c in captions])
    empty_ids = torch.tensor(tok.encode(""))
    vocab = len(tok.vocab)
    log(f"tokenizer: {len(tok.merges)} merges, {vocab} tokens")

    gen = torch.Generator().manual_seed(a.seed)
    if a.from_checkpoint:
        text, unet, enc, dec, scale, unet_steps = load_checkpoint(a.from_checkpoint, tok, gen, times, log)
    else:
        enc, dec = train_vae(images, a, gen, log)
        scale = scaling_factor(enc, images, gen)
        lap("vae")
        text, unet, unet_steps = train_unet(enc, images, ids, empty_ids, scale, a, gen, vocab, log, started + a.max_seconds)
        lap("unet")
        if a.checkpoint:
            torch.save({"text": text.state_dict(), "unet": unet.state_dict(), "enc": enc.state_dict(),
                        "dec": dec.state_dict(), "scale": scale, "merges": tok.merges, "unetSteps": unet_steps,
                        "seconds": dict(times), "generator": gen.get_state()}, a.checkpoint)
            log(f"checkpoint: {a.checkpoint}")
    with torch.no_grad():
        recon = torch.cat([dec(enc(images[i:i + 1000])[0]).clamp(-1, 1) for i in range(0, len(images), 1000)])
    recon_ok = float(np.mean([compositions.judge(recon[i].numpy(), captions[i])["match"] for i in range(min(1000, len(recon)))]))
    log(f"vae: scaling factor {scale}, reconstructions judged right {recon_ok:.3f}")

    gen_rng = np.random.default_rng(a.seed + 3)
    gen_captions = [compositions.caption(compositions.sample_groups(gen_rng)) for _ in range(a.generated)]
    gen_images = generate(text, unet, dec, tok, gen_captions, scale, a.guidance, a.generate_steps, a.seed + 5)
    gen_verdicts = [compositions.judge(x.numpy(), c) for x, c in zip(gen_images, gen_captions)]
    gen_right = float(np.mean([v["match"] for v in gen_verdicts]))
    log(f"generated {a.generated} images for the verifier, {gen_right:.3f} judged right")
    lap("generate")

    verifier = train_verifier(images, recon, groups, (gen_images, [v["found"] for v in gen_verdicts]), a, gen, rng, tok,
                              vocab, log)
    held_rng = np.random.default_rng(a.seed + 9)
    test_images, test_captions = compositions.dataset(1000, held_rng)
    test_groups = [sorted((n, c, s) for (c, s), n in compositions.parse(x).items()) for x in test_captions]
    labels = held_rng.random(1000) < 0.5
    texts = [c if lab else compositions.caption(perturb(g, held_rng)) for c, g, lab in zip(test_captions, test_groups, labels)]
    with torch.no_grad():
        s = verifier(torch.from_numpy(test_images), torch.tensor([tok.encode(t) for t in texts]))[:, 0]
    verifier_acc = float(np.mean((s.numpy() > 0) == labels))
    log(f"verifier: {verifier_acc:.3f} right on 1000 fresh real images (half with a perturbed caption)")
    generated_acc, generated_pairs = verifier_on_generated(text, unet, dec, verifier, tok, scale, a)
    log(f"verifier: {generated_acc:.3f} right on {generated_pairs} fresh generated images (half with a perturbed caption of what they show)")
    picks = verifier_picks(text, unet, dec, verifier, tok, scale, a, log)
    lap("verifier")

    def count(m):
        return sum(x.numel() for x in m.parameters())

    meta = {
        "verifier": {"script": "models/training/train_shapes_t2i.py", "seed": a.seed, "steps": a.verifier_steps,
                     "parameters": count(verifier), "heldOutAccuracy": verifier_acc, "heldOutPairs": 1000,
                     "generatedAccuracy": generated_acc, "generatedPairs": generated_pairs, "picks": picks},
    }
    export_family(a.out, tok, text, unet, enc, dec, verifier, scale, meta)
    lap("export")

    results = evaluate(text, unet, dec, verifier, tok, scale, a, log)
    lap("evaluate")
    summary = {
        "seed": a.seed,
        "images": a.images,
        "heldOut": [list(x) for x in compositions.HELD_OUT],
        "parameters": {"text_encoder": count(text), "unet": count(unet), "vae_encoder": count(enc),
                       "vae_decoder": count(dec), "verifier": count(verifier)},
        "steps": {"vae": a.vae_steps, "unet": unet_steps, "verifier": a.verifier_steps, "batch": a.batch},
        "scalingFactor": scale,
        "reconstructionsJudgedRight": recon_ok,
        "generatedForVerifierJudgedRight": gen_right,
        "verifierHeldOutAccuracy": verifier_acc,
        "verifierGeneratedAccuracy": generated_acc,
        "verifierPicks": picks,
        "evaluation": {"sampler": f"DDIM eta 0, {a.eval_steps} steps, guidance {a.guidance}, seed {a.seed + 11}",
                       "judge": "compositions.judge (Python twin of CompositionJudge) on torch-model samples",
                       **results},
        "seconds": times,
        "threads": torch.get_num_threads(),
    }
    write_json(os.path.join(a.out, "training.json"), summary)
    log(f"done: {json.dumps(times)}")


if __name__ == "__main__":
    main()
