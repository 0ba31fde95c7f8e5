#!/usr/bin/env python3
"""A verifier written in Python, served over the Open Inference Protocol (KServe v2 gRPC).

It scores samples the way SearchOrchestrator's built-in `object-counter` does: count the bright objects of a
single-channel image in [-1, 1] (8-connected components of pixels above 0, ignoring specks under 3 pixels) and score
-|count - n| for the condition n. `searchorch serve` calls it as a `kserve` verifier; any Open Inference Protocol
client (Triton's, KServe's) can call it too.

Needs Debian's python3-grpcio, python3-numpy and python3-grpc-tools (the protocol's .proto files are compiled at
start-up from the repository's protos/ folder, so nothing generated is checked in).

    /usr/bin/python3 samples/PythonVerifier/verifier.py --port 8001

prints one line `listening on 127.0.0.1:8001` once it serves, and stops on Ctrl+C or SIGTERM.

With `--time-input t` the model also takes each sample's model time (FP32 [B], what a noise-aware verifier scores
with; configure `Verifiers:Remote:<n>:Tensors:Time` to `t`), and with `--echo-time` it scores every sample with that
time instead of counting (to see what the orchestrator sends). `--delay 2.5` makes every ModelInfer answer 2.5 s late
(to try a verifier's `CallTimeout`).
"""

import argparse
import importlib
import os
import signal
import struct
import sys
import tempfile
import time
from concurrent import futures

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def compile_protocol(protos):
    """Compiles grpc_predict_v2.proto (and what it imports) into a temporary folder and imports the modules."""
    try:
        from grpc_tools import protoc
    except ImportError:
        sys.exit("verifier.py: grpc_tools is missing: apt-get install python3-grpc-tools")
    out = tempfile.mkdtemp(prefix="oip-")
    files = [os.path.join(protos, name) for name in ("grpc_predict_v2.proto", "model_config.proto")]
    for path in files:
        if not os.path.exists(path):
            sys.exit(f"verifier.py: {path} not found: pass --protos <the repository's protos folder>")
    if protoc.main(["protoc", f"-I{protos}", f"--python_out={out}", f"--grpc_python_out={out}", *files]) != 0:
        sys.exit(f"verifier.py: protoc could not compile {files[0]}")
    sys.path.insert(0, out)
    return importlib.import_module("grpc_predict_v2_pb2"), importlib.import_module("grpc_predict_v2_pb2_grpc")


def count_objects(image, threshold=0.0, min_area=3):
    """8-connected components of pixels above threshold with at least min_area pixels (as ObjectCounter counts)."""
    foreground = image > threshold
    height, width = foreground.shape
    seen = np.zeros_like(foreground)
    count = 0
    for start_y, start_x in zip(*np.nonzero(foreground)):
        if seen[start_y, start_x]:
            continue
        seen[start_y, start_x] = True
        stack, area = [(start_y, start_x)], 0
        while stack:
            y, x = stack.pop()
            area += 1
            for ny in range(max(0, y - 1), min(height, y + 2)):
                for nx in range(max(0, x - 1), min(width, x + 2)):
                    if foreground[ny, nx] and not seen[ny, nx]:
                        seen[ny, nx] = True
                        stack.append((ny, nx))
        if area >= min_area:
            count += 1
    return count


def decode_bytes(raw):
    """BYTES tensor contents in raw form: each element is a 4-byte little-endian length and then its bytes."""
    items, offset = [], 0
    while offset < len(raw):
        (length,) = struct.unpack_from("<I", raw, offset)
        items.append(raw[offset + 4:offset + 4 + length])
        offset += 4 + length
    return items


def build_servicer(pb, pb_grpc, grpc, model, time_input=None, echo_time=False, delay=0.0):
    """The GRPCInferenceService for one model: `sample` FP32 [B, 1, H, W], `condition` BYTES [B] (and `time_input` FP32 [B]) in, `score` FP32 [B] out."""

    def invalid(context, message):
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, message)

    def require_model(name, context):
        if name != model:
            context.abort(grpc.StatusCode.NOT_FOUND, f"unknown model '{name}': this server serves '{model}'")

    class Verifier(pb_grpc.GRPCInferenceServiceServicer):
        def ServerLive(self, request, context):
            return pb.ServerLiveResponse(live=True)

        def ServerReady(self, request, context):
            return pb.ServerReadyResponse(ready=True)

        def ModelReady(self, request, context):
            require_model(request.name, context)
            return pb.ModelReadyResponse(ready=True)

        def ServerMetadata(self, request, context):
            return pb.ServerMetadataResponse(name="python-verifier", version="1", extensions=[])

        def ModelMetadata(self, request, context):
            require_model(request.name, context)
            tensor = pb.ModelMetadataResponse.TensorMetadata
            inputs = [tensor(name="sample", datatype="FP32", shape=[-1, 1, -1, -1]),
                      tensor(name="condition", datatype="BYTES", shape=[-1])]
            if time_input:
                inputs.append(tensor(name=time_input, datatype="FP32", shape=[-1]))
            return pb.ModelMetadataResponse(
                name=model, versions=["1"], platform="python", inputs=inputs,
                outputs=[tensor(name="score", datatype="FP32", shape=[-1])])

        def ModelInfer(self, request, context):
            require_model(request.model_name, context)
            if delay > 0:
                time.sleep(delay)
            raw = len(request.raw_input_contents) > 0
            if raw and len(request.raw_input_contents) != len(request.inputs):
                invalid(context, f"raw_input_contents has {len(request.raw_input_contents)} entries for {len(request.inputs)} inputs")
            tensors = {}
            for index, tensor in enumerate(request.inputs):
                tensors[tensor.name] = (tensor, request.raw_input_contents[index] if raw else None)
            for name in ("sample", "condition") + ((time_input,) if time_input else ()):
                if name not in tensors:
                    invalid(context, f"input '{name}' is missing (inputs given: {', '.join(tensors) or 'none'})")

            sample, sample_raw = tensors["sample"]
            if sample.datatype != "FP32" or len(sample.shape) != 4 or sample.shape[1] != 1:
                invalid(context, f"input 'sample' must be FP32 [B, 1, H, W], got {sample.datatype} {list(sample.shape)}")
            batch, _, height, width = sample.shape
            pixels = np.frombuffer(sample_raw, dtype="<f4") if raw else np.asarray(sample.contents.fp32_contents, dtype=np.float32)
            if pixels.size != batch * height * width:
                invalid(context, f"input 'sample' declares {batch}x1x{height}x{width} = {batch * height * width} values, got {pixels.size}")
            images = pixels.reshape(batch, height, width)

            condition, condition_raw = tensors["condition"]
            labels = decode_bytes(condition_raw) if raw else list(condition.contents.bytes_contents)
            if len(labels) != batch:
                invalid(context, f"input 'condition' has {len(labels)} entries for a batch of {batch}")

            times = None
            if time_input:
                t, t_raw = tensors[time_input]
                times = np.frombuffer(t_raw, dtype="<f4") if raw else np.asarray(t.contents.fp32_contents, dtype=np.float32)
                if t.datatype != "FP32" or times.size != batch:
                    invalid(context, f"input '{time_input}' must be FP32 [{batch}], got {t.datatype} with {times.size} values")

            scores = np.empty(batch, dtype=np.float32)
            for i, label in enumerate(labels):
                if echo_time:
                    scores[i] = times[i]
                    continue
                text = label.decode("utf-8", "replace")
                if not text.strip().lstrip("-").isdigit():
                    invalid(context, f"condition {i} must be a whole number (the object count), got '{text[:32]}'")
                scores[i] = -abs(count_objects(images[i]) - int(text))

            output = pb.ModelInferResponse.InferOutputTensor(name="score", datatype="FP32", shape=[batch])
            response = pb.ModelInferResponse(model_name=model, model_version="1", id=request.id, outputs=[output])
            if raw:
                response.raw_output_contents.append(scores.astype("<f4").tobytes())
            else:
                response.outputs[0].contents.fp32_contents.extend(scores.tolist())
            return response

    return Verifier()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8001, help="port to listen on; 0 picks a free one (default 8001)")
    parser.add_argument("--model", default="py-counter", help="the model name clients ask for (default py-counter)")
    parser.add_argument("--protos", default=os.path.join(HERE, "..", "..", "protos"), help="the folder holding grpc_predict_v2.proto")
    parser.add_argument("--workers", type=int, default=2, help="threads serving calls (default 2)")
    parser.add_argument("--time-input", default=None, help="also take each sample's model time as this FP32 [B] input (default: none)")
    parser.add_argument("--echo-time", action="store_true", help="score each sample with its time instead of counting (needs --time-input)")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds every ModelInfer waits before answering (default 0)")
    args = parser.parse_args()
    if args.echo_time and not args.time_input:
        parser.error("--echo-time needs --time-input")
    if args.delay < 0:
        parser.error(f"--delay must not be negative, got {args.delay}")

    pb, pb_grpc = compile_protocol(os.path.abspath(args.protos))
    import grpc

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=args.workers),
                         options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)])
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(build_servicer(pb, pb_grpc, grpc, args.model, args.time_input, args.echo_time, args.delay), server)
    port = server.add_insecure_port(f"{args.host}:{args.port}")
    if port == 0:
        sys.exit(f"verifier.py: cannot listen on {args.host}:{args.port}")
    server.start()
    print(f"listening on {args.host}:{port}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: server.stop(0))
    try:
        server.wait_for_termination()
    except KeyboardInterrupt:
        server.stop(0)


if __name__ == "__main__":
    main()
