"""Writes the images the CompositionJudge tests judge, with answers known by construction.

Each case is a scene drawn by compositions.draw from known groups, a caption (the scene's own, or one changed in
a count, a colour, a shape, a binding or a group), and the verdict that follows from the two group lists alone:
the found counts are the drawn groups, the distance is the sum of |drawn - captioned| per (colour, shape). The
Python judge must agree with every expected verdict, or the script fails.

Run with Debian's interpreter: /usr/bin/python3 models/training/make_composition_fixtures.py
Writes tests/SearchOrchestrator.Core.Tests/Verifiers/Fixtures/compositions.json.
"""
import base64
import json
import os

import numpy as np

import compositions

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "..", "tests", "SearchOrchestrator.Core.Tests", "Verifiers", "Fixtures",
                   "compositions.json")

# (drawn groups, captioned groups or None for the drawn ones, Gaussian noise sigma)
CASES = [
    ([(1, "red", "circle")], None, 0),
    ([(9, "yellow", "square")], None, 0),
    ([(3, "red", "circle"), (2, "blue", "square")], None, 0),
    ([(2, "green", "triangle"), (1, "blue", "circle"), (4, "yellow", "triangle")], None, 0),
    ([(4, "red", "circle"), (3, "red", "square"), (2, "red", "triangle")], None, 0),
    ([(3, "red", "circle"), (2, "blue", "square")], None, 0.1),
    ([(3, "red", "circle"), (2, "blue", "square")], [(4, "red", "circle"), (2, "blue", "square")], 0),
    ([(5, "green", "circle")], [(5, "blue", "circle")], 0),
    ([(2, "yellow", "triangle"), (3, "blue", "square")], [(2, "yellow", "circle"), (3, "blue", "square")], 0),
    ([(2, "red", "circle"), (2, "blue", "square")], [(2, "blue", "circle"), (2, "red", "square")], 0),
    ([(1, "green", "square"), (2, "red", "triangle")], [(1, "green", "square")], 0),
    ([(6, "blue", "triangle")], [(6, "blue", "triangle"), (1, "yellow", "circle")], 0),
    ([(2, "red", "square"), (2, "green", "circle"), (2, "blue", "triangle")], None, 0.1),
]


def expected(drawn, captioned):
    found = {(c, s): n for n, c, s in drawn}
    wanted = {(c, s): n for n, c, s in captioned}
    keys = set(found) | set(wanted)

    def marginal(counts, axis):
        out = {}
        for k, n in counts.items():
            out[k[axis]] = out.get(k[axis], 0) + n
        return out

    return {
        "distance": sum(abs(found.get(k, 0) - wanted.get(k, 0)) for k in keys),
        "count": sum(found.values()) == sum(wanted.values()),
        "color": marginal(found, 0) == marginal(wanted, 0),
        "shape": marginal(found, 1) == marginal(wanted, 1),
        "found": [{"count": found[(c, s)], "color": c, "shape": s}
                  for c in compositions.COLORS for s in compositions.SHAPES if (c, s) in found],
    }


def main():
    rng = np.random.default_rng(20261201)
    cases = []
    for drawn, captioned, sigma in CASES:
        image = None
        while image is None:
            image = compositions.draw(drawn, rng)
        if sigma:
            image = np.clip(image + rng.normal(0, sigma, image.shape), -1, 1)
        pixels = np.round((image.transpose(1, 2, 0) + 1) / 2 * 255).astype(np.uint8)  # [H, W, 3]
        text = compositions.caption(captioned or drawn)
        want = expected(drawn, captioned or drawn)
        verdict = compositions.judge(pixels.transpose(2, 0, 1).astype(np.float32) / 255 * 2 - 1, text)
        for axis in ("distance", "count", "color", "shape"):
            if verdict[axis] != want[axis]:
                raise SystemExit(f"the Python judge says {axis} {verdict[axis]} for '{text}', expected {want[axis]}")
        cases.append({"caption": text, "drawn": compositions.caption(drawn), "noise": sigma, **want,
                      "rgb": base64.b64encode(pixels.tobytes()).decode("ascii")})
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"size": compositions.IMAGE_SIZE, "layout": "rgb: base64 of height x width x 3 bytes, row-major",
                   "cases": cases}, f, indent=1)
        f.write("\n")
    print(f"wrote {len(cases)} cases to {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
