"""Procedural compositional scenes and their captions ("three red circles and two blue squares"), and the
programmatic judge that checks an image against a caption (the Python twin of the C# CompositionJudge).

Each image is IMAGE_SIZE x IMAGE_SIZE RGB in [-1, 1] on a plain black background, with 1-3 groups; a group is a
count (one .. nine), a colour and a shape, and no two groups share both colour and shape. At most MAX_OBJECTS
objects in all. Objects are 5 or 7 pixels across and never touch, not even diagonally, so the 8-connected
components of one colour are exactly its objects. Everything is a pure function of the numpy Generator passed in.

Held-out combinations: HELD_OUT lists (count, colour, shape) triples that no training caption contains; prompts
with at least one of them measure generalisation to unseen compositions.
"""
import itertools

import numpy as np

IMAGE_SIZE = 32
MAX_OBJECTS = 9
NUMBERS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# Colour name -> RGB in 0..255. Far apart in RGB, so the nearest palette colour names a pixel.
COLORS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (50, 90, 235), "yellow": (230, 210, 40)}
SHAPES = ("circle", "square", "triangle")
PLURALS = {"circle": "circles", "square": "squares", "triangle": "triangles"}
SIZES = (5, 7)
GROUPS_P = (0.5, 0.3, 0.2)  # how often a caption has 1, 2 or 3 groups
COLOR_JITTER = 15

# Judge settings (the C# CompositionJudge uses the same numbers).
FOREGROUND = 0.4       # a pixel is an object pixel when its brightest channel, in [0, 1], reaches this
MIN_AREA = 4           # smaller components are specks, not objects
SQUARE_FILL = 0.92     # area / bounding box at or above this: a square
TRIANGLE_TOP = 0.38    # share of the top rows' pixels among top + bottom rows below this: a triangle


def _held_out():
    """Twelve (count, colour, shape) triples no training caption contains, fixed before any training."""
    rng = np.random.default_rng(1414)
    triples = list(itertools.product(range(1, 10), COLORS, SHAPES))
    picked = rng.choice(len(triples), size=12, replace=False)
    return tuple(sorted(triples[i] for i in picked))


HELD_OUT = _held_out()


def mask(shape: str, size: int) -> np.ndarray:
    """The boolean mask of one object, size x size (size is odd)."""
    s = size
    yy, xx = np.mgrid[0:s, 0:s]
    c = (s - 1) / 2.0
    if shape == "square":
        return np.ones((s, s), bool)
    if shape == "circle":
        r = s / 2.0 - 0.25
        return (yy - c) ** 2 + (xx - c) ** 2 <= r * r
    if shape == "triangle":  # apex up: row r is 2*(r//2)+1 pixels wide
        return np.abs(xx - c) <= (yy // 2)
    raise ValueError(shape)


def caption(groups) -> str:
    """English caption of [(count, colour, shape), ...]: 'two red circles, one blue square and three ...'."""
    words = [f"{NUMBERS[n - 1]} {color} {shape if n == 1 else PLURALS[shape]}" for n, color, shape in groups]
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " and " + words[-1]


def sample_groups(rng: np.random.Generator, held_out: str = "exclude"):
    """Random groups. held_out: 'exclude' (training: no held-out triple), 'require' (at least one), 'any'."""
    while True:
        k = int(rng.choice([1, 2, 3], p=GROUPS_P))
        pairs = list(itertools.product(COLORS, SHAPES))
        chosen = rng.choice(len(pairs), size=k, replace=False)
        counts = rng.integers(1, 10, size=k)
        while counts.sum() > MAX_OBJECTS:  # uniform over the k-group counts that fit
            counts = rng.integers(1, 10, size=k)
        groups = [(int(n), pairs[i][0], pairs[i][1]) for n, i in zip(counts, chosen)]
        hits = sum(g in HELD_OUT for g in groups)
        if (held_out == "exclude" and hits) or (held_out == "require" and not hits):
            continue
        return groups


def draw(groups, rng: np.random.Generator):
    """One image [3, S, S] float32 in [-1, 1] with exactly the groups' objects, or None when they do not fit."""
    s = IMAGE_SIZE
    img = np.zeros((s, s, 3), np.float32)
    occupied = np.zeros((s + 2, s + 2), bool)  # padded by one pixel for the halo
    objects = [(color, shape) for n, color, shape in groups for _ in range(n)]
    rng.shuffle(objects)
    for color, shape in objects:
        m = mask(shape, int(rng.choice(SIZES)))
        h, w = m.shape
        for _ in range(200):
            y = int(rng.integers(1, s - h))
            x = int(rng.integers(1, s - w))
            if not occupied[y:y + h + 2, x:x + w + 2].any():
                break
        else:
            return None
        occupied[y:y + h + 2, x:x + w + 2] = True  # bounding box plus halo: objects never touch
        rgb = np.clip(np.array(COLORS[color]) + rng.integers(-COLOR_JITTER, COLOR_JITTER + 1, 3), 0, 255) / 255.0
        img[y:y + h, x:x + w][m] = rgb
    return (img.transpose(2, 0, 1) * 2 - 1).astype(np.float32)


def scene(rng: np.random.Generator, held_out: str = "exclude"):
    """(image [3, S, S], groups) for random groups that fit."""
    while True:
        groups = sample_groups(rng, held_out)
        img = draw(groups, rng)
        if img is not None:
            return img, groups


def dataset(count: int, rng: np.random.Generator, held_out: str = "exclude"):
    """count images [N, 3, S, S] and their captions."""
    images, captions = [], []
    for _ in range(count):
        img, groups = scene(rng, held_out)
        images.append(img)
        captions.append(caption(groups))
    return np.stack(images), captions


# ---------------------------------------------------------------------------------------------- the judge

def parse(text: str):
    """Caption -> {(colour, shape): count}. Raises ValueError naming the word that is not understood."""
    words = text.lower().replace(",", " , ").split()
    groups, i = {}, 0
    while True:
        if i + 3 > len(words):
            raise ValueError(f"caption ends early after '{' '.join(words)}': a group is '<number> <colour> <shape>'")
        number, color, shape = words[i:i + 3]
        if number not in NUMBERS:
            raise ValueError(f"word {i + 1} '{number}' is not a number (one .. nine)")
        if color not in COLORS:
            raise ValueError(f"word {i + 2} '{color}' is not a colour ({', '.join(COLORS)})")
        n = NUMBERS.index(number) + 1
        singular = shape if shape in SHAPES else next((k for k, v in PLURALS.items() if v == shape), None)
        if singular is None:
            raise ValueError(f"word {i + 3} '{shape}' is not a shape ({', '.join(SHAPES)})")
        if (color, singular) in groups:
            raise ValueError(f"word {i + 3}: '{color} {shape}' is named twice")
        groups[(color, singular)] = n
        i += 3
        if i == len(words):
            return groups
        if words[i] not in (",", "and"):
            raise ValueError(f"word {i + 1} '{words[i]}' should be ',' or 'and' between groups")
        i += 1


def objects(image: np.ndarray):
    """[(colour, shape)] of every object in an image [3, H, W] in [-1, 1]."""
    rgb = (np.clip(image, -1, 1) + 1) / 2  # [3, H, W] in [0, 1]
    _, h, w = rgb.shape
    palette = np.array(list(COLORS.values()), np.float32) / 255.0  # [C, 3]
    names = list(COLORS)
    fg = rgb.max(axis=0) >= FOREGROUND
    dist = ((rgb.transpose(1, 2, 0)[:, :, None, :] - palette[None, None]) ** 2).sum(-1)  # [H, W, C]
    label = np.where(fg, dist.argmin(-1), -1)
    seen = np.zeros((h, w), bool)
    found = []
    for sy in range(h):
        for sx in range(w):
            if label[sy, sx] < 0 or seen[sy, sx]:
                continue
            c = label[sy, sx]
            stack, pixels = [(sy, sx)], []
            seen[sy, sx] = True
            while stack:
                y, x = stack.pop()
                pixels.append((y, x))
                for dy in (-1, 0, 1):
                    for dx in (-1, 0, 1):
                        ny, nx = y + dy, x + dx
                        if 0 <= ny < h and 0 <= nx < w and not seen[ny, nx] and label[ny, nx] == c:
                            seen[ny, nx] = True
                            stack.append((ny, nx))
            if len(pixels) >= MIN_AREA:
                found.append((names[c], classify(pixels)))
    return found


def classify(pixels) -> str:
    """Shape of one component: a square fills its bounding box; a triangle has fewer pixels in its top rows."""
    ys = [p[0] for p in pixels]
    xs = [p[1] for p in pixels]
    top, left = min(ys), min(xs)
    height, width = max(ys) - top + 1, max(xs) - left + 1
    if len(pixels) / (height * width) >= SQUARE_FILL:
        return "square"
    half = height // 2
    upper = sum(1 for y in ys if y - top < half)
    lower = sum(1 for y in ys if y - top >= height - half)
    if upper + lower > 0 and upper / (upper + lower) < TRIANGLE_TOP:
        return "triangle"
    return "circle"


def judge(image: np.ndarray, text: str) -> dict:
    """How far image [3, H, W] is from the caption: per (colour, shape) counts, their total absolute difference,
    and whether the count, colour, shape and whole-prompt axes match (see models/README.md)."""
    wanted = parse(text)
    found = {}
    for key in objects(image):
        found[key] = found.get(key, 0) + 1
    keys = set(wanted) | set(found)
    distance = sum(abs(found.get(k, 0) - wanted.get(k, 0)) for k in keys)

    def marginal(counts, axis):
        out = {}
        for k, n in counts.items():
            out[k[axis]] = out.get(k[axis], 0) + n
        return out

    return {
        "distance": distance,
        "match": distance == 0,
        "count": sum(found.values()) == sum(wanted.values()),
        "color": marginal(found, 0) == marginal(wanted, 0),
        "shape": marginal(found, 1) == marginal(wanted, 1),
        "found": found,
    }
