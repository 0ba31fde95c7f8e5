"""Writes the tiny ONNX verifiers the tests use for the scoring rules no shipped model has.

Run with Debian's interpreter: /usr/bin/python3 models/training/make_test_verifiers.py
Writes tests/SearchOrchestrator.Onnx.Tests/Fixtures/{brightness,halves}/{model.onnx,model.json}:
- brightness: a `scalar` verifier whose output is the mean pixel value of the image;
- halves: a `negative-distance` verifier whose output is (mean of the left half, mean of the right half),
  scored against a target vector per condition label.
"""
import os

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


def main():
    sample = export.tensor("image", "float32", [-1, 1, SIZE, SIZE])
    for name, module, outputs, scoring in [
        ("brightness", Brightness(), 1, {"rule": "scalar"}),
        ("halves", Halves(), 2, {"rule": "negative-distance",
                                 "targets": {"left": [1.0, -1.0], "right": [-1.0, 1.0], "dark": [-1.0, -1.0]}}),
    ]:
        directory = os.path.join(OUT, name)
        export.export_onnx(module, (torch.zeros(1, 1, SIZE, SIZE),), os.path.join(directory, "model.onnx"), ["image"], ["score"])
        export.write_manifest(directory, {
            "name": name,
            "kind": "verifier",
            "description": "Test fixture made by models/training/make_test_verifiers.py.",
            "inputs": {"sample": sample},
            "outputs": {"output": export.tensor("score", "float32", [-1, outputs])},
            "scoring": scoring,
        })


if __name__ == "__main__":
    main()
