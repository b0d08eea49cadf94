"""Images the project provides itself for `painterly demo`, so it works offline with no files.

The content is a photograph bundled inside scikit-image's wheel; the style is a painting this
module paints procedurally (thick curved strokes along a swirling flow field, in a night-sky
palette of deep blues, yellows and whites), deterministic for a given seed.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

__all__ = ["demo_content", "demo_style"]

# Palettes (RGB). Sky: ultramarine to pale cobalt; lights: cadmium yellows and warm whites.
_SKY = np.array(
    [
        (14, 30, 92),
        (22, 52, 130),
        (34, 76, 160),
        (52, 104, 182),
        (86, 140, 200),
        (120, 170, 215),
        (28, 62, 120),
        (18, 40, 104),
    ],
    dtype=np.float64,
)
_LIGHT = np.array(
    [(250, 214, 60), (246, 190, 40), (255, 236, 130), (250, 246, 214), (230, 160, 30)],
    dtype=np.float64,
)
_HALO = np.array(
    [(236, 232, 190), (200, 220, 210), (250, 226, 120), (160, 200, 220)], dtype=np.float64
)
_HILLS = np.array(
    [(20, 44, 86), (34, 70, 110), (48, 92, 96), (70, 112, 130), (26, 56, 70), (96, 130, 150)],
    dtype=np.float64,
)
_TREE = np.array(
    [(16, 26, 20), (30, 46, 28), (44, 62, 34), (64, 50, 30), (22, 38, 40)], dtype=np.float64
)


def demo_content() -> Image.Image:
    """A photograph to stylise: Chelsea the cat, bundled with scikit-image (no download)."""
    from skimage import data  # imported lazily: only the demo needs scikit-image

    return Image.fromarray(np.ascontiguousarray(data.chelsea())).convert("RGB")


def demo_style(size: int = 512, seed: int = 0) -> Image.Image:
    """A square, swirling night-sky painting with visible brush strokes, `size` px on a side.

    Same `size` and `seed` give the same pixels. Painted at 2x and downsampled so strokes
    have soft edges like real paint rather than aliased lines.
    """
    if size < 8:
        raise ValueError(f"demo style size must be at least 8 px, got {size}")
    rng = np.random.default_rng(seed)
    scale = 2
    side = size * scale
    scene = _Scene(rng)

    canvas = Image.fromarray(_ground(scene, side, rng))
    draw = ImageDraw.Draw(canvas)
    unit = side / 512.0  # stroke sizes are designed for a 512 px canvas

    # Layers from back to front, like a painter would: sky, halos, hills, stars, tree.
    _paint_strokes(
        draw, scene, rng, side, unit, count=int(2600 * (size / 512) ** 2) + 60, region="sky"
    )
    _paint_strokes(
        draw, scene, rng, side, unit, count=int(1500 * (size / 512) ** 2) + 30, region="hills"
    )
    _paint_lights(draw, scene, rng, side, unit)
    _paint_tree(draw, scene, rng, side, unit)

    canvas = canvas.filter(ImageFilter.SMOOTH)
    return canvas.resize((size, size), Image.Resampling.LANCZOS)


class _Scene:
    """Random layout of one painting: vortices, lights, horizon and the tree."""

    def __init__(self, rng: np.random.Generator) -> None:
        # Vortices in unit coordinates: (x, y, radius, strength with sign = turning direction).
        n_vortex = 3
        self.vortices = np.column_stack(
            [
                rng.uniform(0.2, 0.85, n_vortex),
                rng.uniform(0.15, 0.45, n_vortex),
                rng.uniform(0.10, 0.20, n_vortex),
                rng.choice([-1.0, 1.0], n_vortex) * rng.uniform(0.8, 1.4, n_vortex),
            ]
        )
        # One big moon in an upper corner, and stars kept apart from it and from each other.
        self.moon = np.array([rng.uniform(0.72, 0.88), rng.uniform(0.1, 0.18), 0.075])
        lights: list[tuple[float, float, float]] = []
        placed = [self.moon]
        for _ in range(200):  # rejection sampling; bounded so it always ends
            if len(lights) == 4:
                break
            cx, cy, r = rng.uniform(0.3, 0.95), rng.uniform(0.06, 0.5), rng.uniform(0.025, 0.05)
            if all(np.hypot(cx - q[0], cy - q[1]) > 3.2 * (r + q[2]) for q in placed):
                lights.append((cx, cy, r))
                placed.append(np.array([cx, cy, r]))
        self.lights = np.array(lights, dtype=np.float64).reshape(-1, 3)
        self.horizon = rng.uniform(0.64, 0.72)
        self.wave_phase = rng.uniform(0, 2 * np.pi, 3)
        self.tree_x = rng.uniform(0.08, 0.22)

    def hill_line(self, x: np.ndarray) -> np.ndarray:
        """Height (unit coordinates) of the rolling hills at x."""
        p = self.wave_phase
        return (
            self.horizon
            + 0.035 * np.sin(2 * np.pi * 1.3 * x + p[0])
            + 0.02 * np.sin(2 * np.pi * 3.1 * x + p[1])
        )

    def flow(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Unit direction of the swirling flow at points (x, y) in unit coordinates."""
        p = self.wave_phase
        # Base: a wavy left-to-right wind.
        u = np.ones_like(x)
        v = 0.45 * np.sin(2 * np.pi * (1.6 * x + 0.7 * y) + p[2]) + 0.2 * np.sin(7 * y + p[0])
        for cx, cy, radius, strength in self.vortices:
            dx, dy = x - cx, y - cy
            r2 = dx * dx + dy * dy
            weight = strength * 3.0 * np.exp(-r2 / (2 * radius * radius)) / np.sqrt(r2 + 1e-4)
            u += -dy * weight * 6
            v += dx * weight * 6
        for cx, cy, radius in [*self.lights, self.moon]:
            dx, dy = x - cx, y - cy
            r2 = dx * dx + dy * dy
            weight = 2.0 * np.exp(-r2 / (2 * (2.6 * radius) ** 2)) / np.sqrt(r2 + 1e-4)
            u += -dy * weight * 4
            v += dx * weight * 4
        norm = np.sqrt(u * u + v * v) + 1e-9
        return u / norm, v / norm


def _ground(scene: _Scene, side: int, rng: np.random.Generator) -> np.ndarray:
    """The underpainting: a deep blue sky gradient over dark hills, with blotchy variation."""
    y = np.linspace(0.0, 1.0, side)[:, None]
    x = np.linspace(0.0, 1.0, side)[None, :]
    top = np.array([16, 34, 96], dtype=np.float64)
    low = np.array([60, 104, 170], dtype=np.float64)
    t = np.clip(y / scene.horizon, 0, 1)[..., None]
    sky = top * (1 - t) + low * t
    hills = np.broadcast_to(np.array([22, 46, 70], dtype=np.float64), sky.shape)
    below = (y > scene.hill_line(x))[..., None]
    image = np.where(below, hills, sky)
    # Low-frequency blotches, like uneven thin paint.
    coarse = rng.normal(0, 1, (9, 9, 3))
    blotch = np.asarray(
        Image.fromarray(((coarse - coarse.min()) / np.ptp(coarse) * 255).astype(np.uint8)).resize(
            (side, side), Image.Resampling.BICUBIC
        ),
        dtype=np.float64,
    )
    image = image + (blotch - 128) * 0.12
    return np.clip(image, 0, 255).astype(np.uint8)


def _jitter(color: np.ndarray, rng: np.random.Generator, amount: float) -> tuple[int, int, int]:
    c = np.clip(color + rng.normal(0, amount, 3), 0, 255)
    return (int(c[0]), int(c[1]), int(c[2]))


def _paint_strokes(
    draw: ImageDraw.ImageDraw,
    scene: _Scene,
    rng: np.random.Generator,
    side: int,
    unit: float,
    *,
    count: int,
    region: str,
) -> None:
    """Short, thick, curved strokes that follow the flow, each with a lighter ridge on top."""
    x = rng.uniform(-0.02, 1.02, count)
    if region == "sky":
        y = rng.uniform(-0.02, 1.0, count)
        keep = y < scene.hill_line(x) + 0.01
    else:
        y = rng.uniform(0.5, 1.12, count)
        keep = y > scene.hill_line(x) + 0.005
    x, y = x[keep], y[keep]
    n = x.size
    order = rng.permutation(n)
    x, y = x[order], y[order]
    steps = 6
    step_len = rng.uniform(0.008, 0.014, n)
    start = np.column_stack([x, y])
    if region == "hills":
        paths = _trace_hills(scene, start, steps, step_len)
    else:
        paths = _trace_batch(scene, start, steps, step_len)
    widths = rng.uniform(5.0, 9.0, n) * unit
    for i in range(n):
        px, py = x[i], y[i]
        color = _stroke_color(scene, px, py, rng, region)
        pts = [(float(a * side), float(b * side)) for a, b in paths[i]]
        width = max(1, int(widths[i]))
        draw.line(pts, fill=color, width=width, joint="curve")
        _round_caps(draw, pts, width, color)
        # Impasto ridge: a thinner, lighter line slightly off-center.
        ridge = tuple(min(255, int(c * 1.18 + 18)) for c in color)
        off = 0.25 * width
        draw.line(
            [(a + off * 0.3, b - off) for a, b in pts[1:-1]],
            fill=ridge,
            width=max(1, width // 3),
            joint="curve",
        )


def _round_caps(
    draw: ImageDraw.ImageDraw,
    pts: list[tuple[float, float]],
    width: int,
    color: tuple[int, int, int],
) -> None:
    """Round the stroke ends: a brush leaves rounded, not square, ends."""
    r = width / 2 - 0.5
    for x, y in (pts[0], pts[-1]):
        draw.ellipse([x - r, y - r, x + r, y + r], fill=color)


def _trace_batch(scene: _Scene, start: np.ndarray, steps: int, step_len: np.ndarray) -> np.ndarray:
    """Vectorised `_trace` with a step length per stroke."""
    points = np.empty((start.shape[0], steps + 1, 2))
    points[:, 0] = start
    pos = start.copy()
    h = step_len[:, None]
    for i in range(steps):
        u, v = scene.flow(pos[:, 0], pos[:, 1])
        mid = pos + 0.5 * h * np.column_stack([u, v])
        mu, mv = scene.flow(mid[:, 0], mid[:, 1])
        pos = pos + h * np.column_stack([mu, mv])
        points[:, i + 1] = pos
    return points


def _trace_hills(scene: _Scene, start: np.ndarray, steps: int, step_len: np.ndarray) -> np.ndarray:
    """Hills strokes run roughly parallel to the hill line, gently rolling."""
    points = np.empty((start.shape[0], steps + 1, 2))
    depth = start[:, 1] - scene.hill_line(start[:, 0])
    for i in range(steps + 1):
        xs = start[:, 0] + i * step_len
        points[:, i, 0] = xs
        points[:, i, 1] = scene.hill_line(xs) + depth * (1 + 0.15 * np.sin(9 * xs))
    return points


def _stroke_color(
    scene: _Scene, x: float, y: float, rng: np.random.Generator, region: str
) -> tuple[int, int, int]:
    if region == "hills":
        return _jitter(_HILLS[rng.integers(len(_HILLS))], rng, 10)
    # Near a light: warm halo colors; otherwise sky blues with occasional pale accents.
    for cx, cy, radius in [*scene.lights, scene.moon]:
        d = np.hypot(x - cx, y - cy) / radius
        if d < 2.8 and rng.random() < 0.85 - 0.22 * d:
            return _jitter(_HALO[rng.integers(len(_HALO))], rng, 12)
    if rng.random() < 0.08:
        return _jitter(_HALO[rng.integers(len(_HALO))], rng, 15)
    depth = np.clip(y / scene.horizon, 0, 1)
    index = int(np.clip(depth * 5 + rng.normal(0, 1.6), 0, len(_SKY) - 1))
    return _jitter(_SKY[index], rng, 10)


def _paint_lights(
    draw: ImageDraw.ImageDraw, scene: _Scene, rng: np.random.Generator, side: int, unit: float
) -> None:
    """Stars and the moon: bold yellow discs built from concentric rings of short strokes."""
    for cx, cy, radius in [*scene.lights, scene.moon]:
        r = radius * side
        center = (cx * side, cy * side)
        draw.ellipse(
            [center[0] - r, center[1] - r, center[0] + r, center[1] + r],
            fill=_jitter(_LIGHT[0], rng, 6),
        )
        rings = 5
        for ring in range(rings, 0, -1):
            rr = r * ring / rings
            n_dabs = max(6, int(2 * np.pi * rr / (6 * unit)))
            phase = rng.uniform(0, 2 * np.pi)
            for k in range(n_dabs):
                a0 = phase + 2 * np.pi * k / n_dabs
                a1 = a0 + 2 * np.pi / n_dabs * 1.3
                color = _jitter(_LIGHT[rng.integers(len(_LIGHT))], rng, 10)
                draw.arc(
                    [center[0] - rr, center[1] - rr, center[0] + rr, center[1] + rr],
                    start=float(np.degrees(a0)),
                    end=float(np.degrees(a1)),
                    fill=color,
                    width=max(1, int(r / rings * 1.1)),
                )
        core = r * 0.35
        draw.ellipse(
            [center[0] - core, center[1] - core, center[0] + core, center[1] + core],
            fill=(255, 246, 200),
        )


def _paint_tree(
    draw: ImageDraw.ImageDraw, scene: _Scene, rng: np.random.Generator, side: int, unit: float
) -> None:
    """A dark cypress in the foreground: flame-like vertical strokes that taper to a tip."""
    base_y = 1.02
    top_y = 0.12
    half_width = 0.085
    count = int(420 * (side / 1024) ** 2) + 20
    t = rng.uniform(0, 1, count)  # 0 at the base, 1 at the tip
    y = base_y + (top_y - base_y) * t
    sway = 0.02 * np.sin(7 * t + scene.wave_phase[1])
    x = scene.tree_x + sway + rng.uniform(-1, 1, count) * half_width * (1 - t) ** 0.8
    for i in range(count):
        length = rng.uniform(0.05, 0.11)
        curl = rng.uniform(-0.025, 0.025)
        xs = np.array([0.0, 0.35, 0.7, 1.0])
        px = x[i] + curl * np.sin(np.pi * xs) + 0.3 * (scene.tree_x - x[i]) * xs
        py = y[i] - length * xs
        pts = [(float(a * side), float(b * side)) for a, b in zip(px, py, strict=True)]
        width = max(1, int(rng.uniform(5, 9) * unit))
        color = _jitter(_TREE[rng.integers(len(_TREE))], rng, 6)
        draw.line(pts, fill=color, width=width, joint="curve")
        _round_caps(draw, pts, width, color)
