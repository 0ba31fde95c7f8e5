"""Writes the tiny ONNX verifiers the tests use for the scoring rules no shipped model has.

Run with Debian's interpreter: /usr/bin/python3 models/training/make_test_verifiers.py [name ...]
Writes tests/SearchOrchestrator.Onnx.Tests/Fixtures/{brightness,halves,brightness-at-t}/{model.onnx,model.json}
(only the named ones when names are given):
- brightness: a `scalar` verifier whose output is the mean pixel value of the image;
- halves: a `negative-distance` verifier whose output is (mean of the left half, mean of the right half),
  scored against a target vector per condition label;
- brightness-at-t: a noise-aware `scalar` verifier (it takes each sample's model time as input `t`) whose output is
  the mean pixel value plus t.
"""
import os
import sys

import torch

import export

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "..", "tests", "SearchOrchestrator.Onnx.Tests", "Fixtures")
SIZE = 24


class Brightness(torch.nn.Module):
    def forward(self, image):
        return image.mean(dim=(1, 2, 3)).unsqueeze(1)


class Halves(torch.nn.Module):
    def forward(self, image):
        left = image[:, :, :, : SIZE // 2].mean(dim=(1, 2, 3))
        right = image[:, :, :, SIZE // 2:].mean(dim=(1, 2, 3))
        return torch.stack([left, right], dim=1)


class BrightnessAtT(torch.nn.Module):
    def forward(self, image, t):
        return (image.mean(dim=(1, 2, 3)) + t).unsqueeze(1)


def main(names):
    sample = export.tensor("image", "float32", [-1, 1, SIZE, SIZE])
    for name, module, outputs, scoring, timed in [
        ("brightness", Brightness(), 1, {"rule": "scalar"}, False),
        ("halves", Halves(), 2, {"rule": "negative-distance",
                                 "targets": {"left": [1.0, -1.0], "right": [-1.0, 1.0], "dark": [-1.0, -1.0]}}, False),
        ("brightness-at-t", BrightnessAtT(), 1, {"rule": "scalar"}, True),
    ]:
        if names and name not in names:
            continue
        directory = os.path.join(OUT, name)
        args, inputs, manifest_inputs = (torch.zeros(1, 1, SIZE, SIZE),), ["image"], {"sample": sample}
        if timed:
            args, inputs = args + (torch.zeros(1),), inputs + ["t"]
            manifest_inputs["time"] = export.tensor("t", "float32", [-1])
        export.export_onnx(module, args, os.path.join(directory, "model.onnx"), inputs, ["score"])
        export.write_manifest(directory, {
            "name": name,
            "kind": "verifier",
            "description": "Test fixture made by models/training/make_test_verifiers.py.",
            "inputs": manifest_inputs,
            "outputs": {"output": export.tensor("score", "float32", [-1, outputs])},
            "scoring": scoring,
        })


if __name__ == "__main__":
    main(sys.argv[1:])
