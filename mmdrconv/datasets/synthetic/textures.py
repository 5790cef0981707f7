"""Class textures shared by the generated datasets: each class is told
apart by its pattern as much as by its shape or colour, so one filter for
the whole image is a poor fit."""
import cv2
import numpy as np


def noise_field(rng, height, width, scale):
    """Smooth random field in [0, 1] (upsampled white noise)."""
    small = rng.random((max(2, height // scale), max(2, width // scale)))
    field = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip(field, 0, 1)


def texture(rng, kind: str, height: int, width: int) -> np.ndarray:
    """A (H, W) pattern in [0, 1] that identifies a class."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    period = rng.uniform(4, 7)
    angle = rng.uniform(0, np.pi)
    if kind == 'stripes':
        t = xx * np.cos(angle) + yy * np.sin(angle)
        return 0.5 + 0.5 * np.sign(np.sin(2 * np.pi * t / period))
    if kind == 'checker':
        return ((xx // period + yy // period) % 2).astype(np.float32)
    if kind == 'dots':
        return ((np.sin(2 * np.pi * xx / period) *
                 np.sin(2 * np.pi * yy / period)) > 0.5).astype(np.float32)
    if kind == 'smooth':
        return noise_field(rng, height, width, 16)
    if kind == 'grain':
        return rng.random((height, width)).astype(np.float32)
    if kind == 'windows':
        return (((xx % 8) < 4) & ((yy % 10) < 5)).astype(np.float32)
    if kind == 'gradient':
        return (yy / max(1, height - 1)).astype(np.float32)
    raise ValueError(kind)


def paint(image, mask, rng, base_color, kind, contrast):
    h, w = image.shape[:2]
    pattern = texture(rng, kind, h, w)[..., None]
    color = np.asarray(base_color, np.float32)
    layer = color * (1 - contrast) + color * contrast * 2 * pattern
    image[mask] = layer[mask]


def style_of(rng, label: str, styles: dict, appearance_cue: float) -> tuple:
    """The (texture, colour) an object or region of class ``label`` wears.

    With probability ``appearance_cue`` its own class's style; otherwise
    one drawn uniformly from all of ``styles`` (its own included), so at
    0 appearance says nothing about the class and only shape and layout
    do. At 1 (the generators' default) nothing is drawn, so the data are
    those of earlier versions, byte for byte.
    """
    if appearance_cue >= 1:
        return styles[label]
    other = list(styles)[int(rng.integers(len(styles)))]
    own = rng.random() < appearance_cue
    return styles[label if own else other]
