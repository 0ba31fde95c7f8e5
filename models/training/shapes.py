"""Procedural "draw exactly n objects" images.

Each image is IMAGE_SIZE x IMAGE_SIZE grayscale in [-1, 1]: a plain black background (-1) and n = 1..9
bright objects of varied shape and size. Objects never touch, not even diagonally (every object is
surrounded by at least one background pixel), so 8-connected components count them exactly.
Everything is a pure function of the numpy Generator passed in.
"""
import numpy as np

IMAGE_SIZE = 24
MAX_COUNT = 9
SHAPES = ("square", "disk", "plus", "diamond", "ring", "bar", "triangle")


def _mask(shape: str, size: int, rng: np.random.Generator) -> np.ndarray:
    s = size
    yy, xx = np.mgrid[0:s, 0:s]
    c = (s - 1) / 2.0
    if shape == "square":
        m = np.ones((s, s), bool)
    elif shape == "disk":
        m = (yy - c) ** 2 + (xx - c) ** 2 <= (s / 2.0) ** 2 + 0.25
    elif shape == "plus":
        w = max(1, s // 3)
        lo = (s - w) // 2
        m = np.zeros((s, s), bool)
        m[lo:lo + w, :] = True
        m[:, lo:lo + w] = True
    elif shape == "diamond":
        m = np.abs(yy - c) + np.abs(xx - c) <= s / 2.0
    elif shape == "ring":
        m = np.ones((s, s), bool)
        m[1:-1, 1:-1] = False
    elif shape == "bar":
        m = np.zeros((s, s), bool)
        w = max(1, s // 2)
        if rng.random() < 0.5:
            m[:w, :] = True
        else:
            m[:, :w] = True
    elif shape == "triangle":
        m = xx <= yy
    else:
        raise ValueError(shape)
    return m


# Smallest and largest side per shape: small enough for nine to fit, big enough to be seen.
_SIZES = {"square": (2, 4), "disk": (3, 5), "plus": (3, 5), "diamond": (3, 5), "ring": (4, 5),
          "bar": (3, 5), "triangle": (3, 5)}


def draw(n: int, rng: np.random.Generator) -> np.ndarray:
    """One image with exactly n objects, as float32 [IMAGE_SIZE, IMAGE_SIZE] in [-1, 1]."""
    while True:
        img = np.full((IMAGE_SIZE, IMAGE_SIZE), -1.0, np.float32)
        occupied = np.zeros((IMAGE_SIZE + 2, IMAGE_SIZE + 2), bool)  # padded by one for the halo
        placed = 0
        for _ in range(400):
            if placed == n:
                break
            shape = SHAPES[rng.integers(len(SHAPES))]
            lo, hi = _SIZES[shape]
            m = _mask(shape, int(rng.integers(lo, hi + 1)), rng)
            if rng.random() < 0.5:
                m = m[::-1, :]
            if rng.random() < 0.5:
                m = m.T
            h, w = m.shape
            y = int(rng.integers(1, IMAGE_SIZE - h))  # keep a one-pixel border free
            x = int(rng.integers(1, IMAGE_SIZE - w))
            # The object plus its one-pixel halo must be free: objects never touch, even diagonally.
            if occupied[y:y + h + 2, x:x + w + 2].any():
                continue
            region = np.zeros((h + 2, w + 2), bool)
            for dy in range(3):
                for dx in range(3):
                    region[dy:dy + h, dx:dx + w] |= m
            occupied[y + 1:y + h + 1, x + 1:x + w + 1] |= m
            # Mark the halo too, so the next object keeps its distance.
            occupied[y:y + h + 2, x:x + w + 2] |= region
            brightness = float(rng.uniform(0.6, 1.0))
            img[y:y + h, x:x + w][m] = brightness
            placed += 1
        if placed == n:
            return img


def batch(count: int, rng: np.random.Generator, min_count: int = 1, max_count: int = MAX_COUNT):
    """count images and their object counts (min_count..max_count), counts drawn uniformly."""
    ns = rng.integers(min_count, max_count + 1, size=count)
    imgs = np.stack([draw(int(n), rng) for n in ns])[:, None, :, :]
    return imgs, ns.astype(np.int64)


def count_components(img: np.ndarray, threshold: float = 0.0, min_area: int = 3) -> int:
    """8-connected components above threshold with at least min_area pixels (mirrors the C# counter)."""
    fg = img > threshold
    seen = np.zeros_like(fg)
    h, w = fg.shape
    count = 0
    for sy in range(h):
        for sx in range(w):
            if not fg[sy, sx] or seen[sy, sx]:
                continue
            stack = [(sy, sx)]
            seen[sy, sx] = True
            area = 0
            while stack:
                y, x = stack.pop()
                area += 1
                for dy in (-1, 0, 1):
                    for dx in (-1, 0, 1):
                        ny, nx = y + dy, x + dx
                        if 0 <= ny < h and 0 <= nx < w and fg[ny, nx] and not seen[ny, nx]:
                            seen[ny, nx] = True
                            stack.append((ny, nx))
            if area >= min_area:
                count += 1
    return count
