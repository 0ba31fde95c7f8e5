"""ONNX export and model.json manifests shared by the training scripts."""
import hashlib
import json
import os

import onnx
import torch

OPSET = 17


def export_onnx(module: torch.nn.Module, args: tuple, path: str, input_names, output_names):
    """Exports with a dynamic batch axis (axis 0 of every input and output), then checks the graph."""
    dynamic = {name: {0: "batch"} for name in list(input_names) + list(output_names)}
    export_onnx_axes(module, args, path, input_names, output_names, dynamic)


def export_onnx_axes(module: torch.nn.Module, args: tuple, path: str, input_names, output_names, dynamic_axes):
    """torch.onnx.export with the names and dynamic axes given, then checks the graph."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    module.eval()
    torch.onnx.export(module, args, path, input_names=list(input_names), output_names=list(output_names),
                      dynamic_axes=dynamic_axes, opset_version=OPSET, do_constant_folding=True)
    model = onnx.load(path)
    onnx.checker.check_model(model)
    # Strip the producer's version so retraining on another torch build still yields comparable files.
    model.producer_version = ""
    onnx.save(model, path)


def write_json(path: str, value) -> None:
    """Writes value as indented JSON with a final newline, creating the folder."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(value, f, indent=2)
        f.write("\n")


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_manifest(directory: str, manifest: dict):
    """Writes model.json beside model.onnx, with the file's SHA-256 filled in."""
    manifest = dict(manifest)
    manifest["sha256"] = sha256(os.path.join(directory, "model.onnx"))
    with open(os.path.join(directory, "model.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")


def tensor(name: str, dtype: str, shape):
    return {"name": name, "dtype": dtype, "shape": list(shape)}
