"""Writes two tiny random-weight pipelines in the diffusers ONNX layout, the loader's test fixtures:

- tests/SearchOrchestrator.Onnx.Tests/Fixtures/pipelines/tiny-sd: float32 throughout, the tensor names and dtypes diffusers'
  scripts/convert_stable_diffusion_checkpoint_to_onnx.py writes (input_ids int32, timestep float32); a linear β
  schedule, v-prediction, linspace spacing, clip_sample.
- .../Fixtures/tiny-sd-fp16: the same weights, float16 inputs and outputs (as an fp16 export) with the dtypes
  Optimum's exporter uses for ids and time (input_ids int64, timestep int64); squaredcos_cap_v2, sample prediction,
  trailing spacing; Optimum's component config.json files with a VAE scaling factor (tiny-sd has only the U-Net's,
  for its latent size, so its decoder's image size is found by running it and its scaling factor is SD's 0.18215).

Each folder gets reference.json: the torch modules' outputs for fixed inputs, which the C# tests compare with what
ONNX Runtime computes through the loader. The tokenizer (clip_bpe.py) is trained on a few captions; reference.json
also holds its ids for them. Needs torch, onnx and numpy (Debian: python3-torch python3-onnx python3-numpy):

    /usr/bin/python3 models/training/make_tiny_pipelines.py
"""
import json
import os
import shutil

import onnx
import torch

import clip_bpe
import export

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "..", "tests", "SearchOrchestrator.Onnx.Tests", "Fixtures", "pipelines")
SEED = 20261201
MAX_LENGTH, HIDDEN, LATENT, LATENT_SIZE, IMAGE_SIZE = 8, 16, 4, 8, 16
CAPTIONS = ["two red circles", "one blue square and three green triangles", "nine yellow triangles", ""]


class TextEncoder(torch.nn.Module):
    def __init__(self, vocab):
        super().__init__()
        self.tokens = torch.nn.Embedding(vocab, HIDDEN)
        self.positions = torch.nn.Parameter(torch.randn(MAX_LENGTH, HIDDEN) * 0.1)
        self.mix = torch.nn.Linear(HIDDEN, HIDDEN)
        self.norm = torch.nn.LayerNorm(HIDDEN)

    def forward(self, input_ids):
        x = self.tokens(input_ids.long()) + self.positions[: input_ids.shape[1]]
        x = self.norm(x + torch.tanh(self.mix(x)))
        return x, x[:, 0]


class UNet(torch.nn.Module):
    """Convolutions with the time and the attention-pooled prompt added, enough to depend on every input."""

    def __init__(self):
        super().__init__()
        self.inp = torch.nn.Conv2d(LATENT, 8, 3, padding=1)
        self.time = torch.nn.Linear(1, 8)
        self.query = torch.nn.Parameter(torch.randn(HIDDEN))
        self.text = torch.nn.Linear(HIDDEN, 8)
        self.out = torch.nn.Conv2d(8, LATENT, 3, padding=1)

    def forward(self, sample, timestep, encoder_hidden_states):
        x, t, c = sample.float(), timestep.float(), encoder_hidden_states.float()
        weights = torch.softmax(c @ self.query, dim=1).unsqueeze(-1)
        text = self.text((weights * c).sum(1))
        time = self.time(t.reshape(-1, 1) / 1000).expand(x.shape[0], -1)
        h = torch.nn.functional.silu(self.inp(x) + (time + text)[:, :, None, None])
        return self.out(h)


class Decoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.up = torch.nn.ConvTranspose2d(LATENT, 8, 4, stride=2, padding=1)
        self.out = torch.nn.Conv2d(8, 3, 3, padding=1)

    def forward(self, latent_sample):
        return torch.tanh(self.out(torch.nn.functional.silu(self.up(latent_sample.float()))))


class Encoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.down = torch.nn.Conv2d(3, LATENT, 4, stride=2, padding=1)

    def forward(self, sample):
        return self.down(sample.float())


class Half(torch.nn.Module):
    """float16 outputs (and, through the wrapped module's casts, inputs) around float32 weights."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, *args):
        out = self.module(*args)
        return tuple(o.half() for o in out) if isinstance(out, tuple) else out.half()


onnx_export = export.export_onnx_axes
write_json = export.write_json


def write(folder, fp16, tok, text, unet, dec, enc):
    out = os.path.join(FIXTURES, folder)
    if os.path.isdir(out):
        shutil.rmtree(out)
    tok.save(os.path.join(out, "tokenizer"))
    float_type = torch.float16 if fp16 else torch.float32
    ids_type = torch.int64 if fp16 else torch.int32
    wrap = Half if fp16 else (lambda m: m)
    ids = torch.tensor([tok.encode(c) for c in CAPTIONS], dtype=ids_type)
    image_axes = {0: "batch", 1: "channels", 2: "height", 3: "width"}
    onnx_export(wrap(text), (ids,), os.path.join(out, "text_encoder", "model.onnx"), ["input_ids"],
                ["last_hidden_state", "pooler_output"], {"input_ids": {0: "batch", 1: "sequence"}})
    timestep = torch.tensor([801, 801]) if fp16 else torch.tensor([801.0, 801.0])
    onnx_export(wrap(unet), (torch.randn(2, LATENT, LATENT_SIZE, LATENT_SIZE).to(float_type), timestep,
                             torch.randn(2, MAX_LENGTH, HIDDEN).to(float_type)),
                os.path.join(out, "unet", "model.onnx"), ["sample", "timestep", "encoder_hidden_states"], ["out_sample"],
                {"sample": image_axes, "timestep": {0: "batch"}, "encoder_hidden_states": {0: "batch", 1: "sequence"}})
    onnx_export(wrap(dec), (torch.randn(1, LATENT, LATENT_SIZE, LATENT_SIZE).to(float_type),),
                os.path.join(out, "vae_decoder", "model.onnx"), ["latent_sample"], ["sample"], {"latent_sample": image_axes})
    onnx_export(wrap(enc), (torch.randn(1, 3, IMAGE_SIZE, IMAGE_SIZE).to(float_type),),
                os.path.join(out, "vae_encoder", "model.onnx"), ["sample"], ["latent_sample"], {"sample": image_axes})
    components = {k: ["diffusers", "OnnxRuntimeModel"] for k in ("text_encoder", "unet", "vae_decoder", "vae_encoder")}
    write_json(os.path.join(out, "model_index.json"), {
        "_class_name": "ORTStableDiffusionPipeline" if fp16 else "OnnxStableDiffusionPipeline",
        "_diffusers_version": "0.30.0",
        "feature_extractor": [None, None],
        "requires_safety_checker": False,
        "safety_checker": [None, None],
        "scheduler": ["diffusers", "PNDMScheduler" if fp16 else "DDIMScheduler"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        **components,
    })
    scheduler = {"_class_name": "PNDMScheduler", "beta_schedule": "squaredcos_cap_v2", "num_train_timesteps": 1000,
                 "prediction_type": "sample", "timestep_spacing": "trailing", "set_alpha_to_one": True,
                 "skip_prk_steps": True} if fp16 else \
        {"_class_name": "DDIMScheduler", "beta_start": 0.0001, "beta_end": 0.02, "beta_schedule": "linear",
         "num_train_timesteps": 500, "prediction_type": "v_prediction", "timestep_spacing": "linspace",
         "steps_offset": 0, "set_alpha_to_one": False, "clip_sample": True, "clip_sample_range": 1.0,
         "trained_betas": None}
    write_json(os.path.join(out, "scheduler", "scheduler_config.json"), {"_diffusers_version": "0.30.0", **scheduler})
    # The latent size: the converter's graph leaves it dynamic, so say it in the U-Net's config (as Optimum does).
    write_json(os.path.join(out, "unet", "config.json"),
               {"_class_name": "UNet2DConditionModel", "in_channels": LATENT, "out_channels": LATENT,
                "sample_size": LATENT_SIZE, "cross_attention_dim": HIDDEN})
    if fp16:  # Optimum writes every component's config
        write_json(os.path.join(out, "text_encoder", "config.json"),
                   {"model_type": "clip_text_model", "hidden_size": HIDDEN, "max_position_embeddings": MAX_LENGTH,
                    "vocab_size": len(tok.vocab)})
        vae = {"_class_name": "AutoencoderKL", "in_channels": 3, "out_channels": 3, "latent_channels": LATENT,
               "sample_size": IMAGE_SIZE, "scaling_factor": 0.5, "block_out_channels": [8, 8]}
        write_json(os.path.join(out, "vae_decoder", "config.json"), vae)
        write_json(os.path.join(out, "vae_encoder", "config.json"), vae)
    return out


def main():
    torch.manual_seed(SEED)
    merges = clip_bpe.train(CAPTIONS)
    tok = clip_bpe.Tokenizer(merges, MAX_LENGTH)
    text, unet, dec, enc = TextEncoder(len(tok.vocab)), UNet(), Decoder(), Encoder()
    # Weights exactly representable in float16, so both variants compute the same function up to fp16 rounding.
    with torch.no_grad():
        for module in (text, unet, dec, enc):
            for p in module.parameters():
                p.copy_(p.half().float())

    ids = torch.tensor([tok.encode(c) for c in CAPTIONS])
    g = torch.Generator().manual_seed(SEED + 1)
    latents = torch.randn(2, LATENT, LATENT_SIZE, LATENT_SIZE, generator=g)
    with torch.no_grad():
        states = text(ids)[0]
        prediction = unet(latents, torch.tensor([801.0, 17.0]), states[:2])
        images = dec(latents)
    reference = {
        "captions": CAPTIONS,
        "inputIds": ids.tolist(),
        "lastHiddenState": [round(v, 6) for v in states.flatten().tolist()],
        "latents": [round(v, 6) for v in latents.flatten().tolist()],
        "timesteps": [801, 17],
        "outSample": [round(v, 6) for v in prediction.flatten().tolist()],
        "decoded": [round(v, 6) for v in images.flatten().tolist()],
    }
    for folder, fp16 in (("tiny-sd", False), ("tiny-sd-fp16", True)):
        out = write(folder, fp16, tok, text, unet, dec, enc)
        write_json(os.path.join(out, "reference.json"), reference)
        print("wrote", out)


if __name__ == "__main__":
    main()
