"""Colour and camera: luminance, an opponent colour space, and the noise, blur and light of an image."""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from studio.imaging import median


def luminance(image: np.ndarray) -> np.ndarray:
    """Rec. 601 luma of an RGB array (any dtype; float result)."""
    return image[..., 0] * 0.299 + image[..., 1] * 0.587 + image[..., 2] * 0.114


def largest_channel(image: np.ndarray) -> np.ndarray:
    """Each pixel's largest channel of an (H, W, 3) array (np.maximum: far quicker than a max over the short last axis)."""
    return np.maximum(np.maximum(image[..., 0], image[..., 1]), image[..., 2])


def to_ycc(image: np.ndarray) -> np.ndarray:
    """RGB float 0..255 -> YCrCb scaled to 0..100 (Y like Lab's L; chroma centred on 50): a linear
    opponent colour space, far cheaper than Lab for per-candidate colour transfer."""
    return cv2.cvtColor(np.clip(image, 0, 255).astype(np.float32) * (1.0 / 255.0), cv2.COLOR_RGB2YCrCb) * 100.0


def to_lab(image: np.ndarray) -> np.ndarray:
    """RGB float 0..255 -> CIE Lab (L 0..100, a and b about -128..127)."""
    return cv2.cvtColor(np.clip(image, 0, 255).astype(np.float32) * (1.0 / 255.0), cv2.COLOR_RGB2LAB)


def from_lab(lab: np.ndarray) -> np.ndarray:
    """CIE Lab -> RGB float 0..255."""
    return cv2.cvtColor(lab.astype(np.float32), cv2.COLOR_LAB2RGB) * 255.0


def _ycc_affine() -> tuple[np.ndarray, np.ndarray]:
    """(P, q) with ``to_ycc(x) == P @ x + q`` for RGB x in 0..255, read off OpenCV's own conversion."""
    basis = np.array([[[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]]], np.float32)
    ycc = to_ycc(basis)[0].astype(np.float64)
    return (ycc[1:] - ycc[0]).T / 255.0, ycc[0]


YCC_P, YCC_Q = _ycc_affine()


def ycc_affine_to_rgb(scale: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """The 3x4 RGB -> RGB matrix that applies ``ycc * scale + offset`` (per channel) in YCrCb space,
    for one ``cv2.transform`` of the image instead of two colour conversions."""
    inverse = np.linalg.inv(YCC_P)
    linear = inverse @ np.diag(scale) @ YCC_P
    shift = inverse @ (scale * YCC_Q + offset - YCC_Q)
    return np.hstack([linear, shift[:, None]]).astype(np.float32)


#: Immerkær's noise kernel: the outer product of [1, -2, 1]; it cancels planes and straight ramps, and
#: white noise of sigma s gives a response of standard deviation 6 s.
_NOISE_KERNEL = np.outer([1.0, -2.0, 1.0], [1.0, -2.0, 1.0]).astype(np.float32)
#: Median |residual| of :func:`residual_noise` on white noise of sigma 1 is 1 / 1.80 (measured; the
#: high-pass and the bilateral smoothing keep ~83% of the noise's median absolute value).
RESIDUAL_SCALE = 1.80
#: Light confidence below which no direction was measured and :data:`DEFAULT_LIGHT` is a guess.
GUESSED_LIGHT = 0.15
#: Default light when the image shows no dominant direction: from the upper left (image coordinates).
DEFAULT_LIGHT = (-math.sqrt(0.5), -math.sqrt(0.5))


@dataclass(frozen=True)
class Photometry:
    """What the surface around a region looks like to the camera: noise, blur and the light."""

    noise: float  # sigma (0..255) of the sensor noise
    blur: float  # Gaussian sigma (px) of the optics
    light: tuple[float, float]  # unit image-plane direction towards the light (x right, y down)
    light_confidence: float  # 0 = no dominant direction seen (the default light was used)
    monochrome: bool = False  # a greyscale image: rendered changes must stay grey too
    texture: float = 0.0  # mean |high-pass| (grey levels) of the surroundings: how textured they are
    fine: float = 0.0  # robust sigma of the surroundings' finest detail (:func:`fine_pass`): edges left out

    def record(self) -> dict:
        return {"noise_sigma": round(self.noise, 3), "blur_sigma": round(self.blur, 3),
                "light_direction": [round(v, 3) for v in self.light],
                "light_confidence": round(self.light_confidence, 3), "monochrome": self.monochrome,
                "texture": round(self.texture, 3), "fine_detail": round(self.fine, 3)}


def immerkaer_sigma(grey: np.ndarray, where: np.ndarray) -> float:
    """Quick sensor-noise sigma of ``grey`` (float32) over ``where``: median absolute response of
    Immerkær's kernel, scaled to a Gaussian sigma (strong edges and texture inflate it)."""
    response = cv2.filter2D(grey, cv2.CV_32F, _NOISE_KERNEL, borderType=cv2.BORDER_REFLECT)
    values = np.abs(response[where] if where.any() else response.ravel())
    return median(values) * 1.4826 / 6.0


def high_pass(grey: np.ndarray) -> np.ndarray:
    """The detail of ``grey`` (float32): grey minus a sigma-2 blur (slopes and shading out, edges,
    texture and noise in)."""
    return grey - cv2.GaussianBlur(grey, (0, 0), 2.0)


def smooth_grey(grey: np.ndarray) -> np.ndarray:
    """``grey`` (float32) blurred by a sigma-1 Gaussian."""
    return cv2.GaussianBlur(grey, (0, 0), 1.0)


def fine_pass(grey: np.ndarray, smooth: np.ndarray | None = None) -> np.ndarray:
    """The finest detail of ``grey`` (float32): grey minus a sigma-1 blur (a shading ramp a few px
    wide mostly drops out; grain, fibres and noise stay); ``smooth``: that blur, when already made."""
    return grey - (smooth_grey(grey) if smooth is None else smooth)


def residual_noise(grey: np.ndarray, where: np.ndarray, level: float, detail: np.ndarray | None = None) -> float:
    """Noise sigma over ``where`` from the residual of an edge-preserving (bilateral) smoothing of the
    image's detail (:func:`high_pass`, so smooth shading does not count; computed when not given)
    whose range is 3x the expected noise ``level``: noise is smoothed away while edges and lines
    (steps well above the noise) are left alone, so they are not counted as noise."""
    detail = high_pass(grey) if detail is None else detail
    smooth = cv2.bilateralFilter(detail, 5, max(3.0 * level, 2.0), 1.5)
    values = np.abs(detail[where] - smooth[where])
    return median(values) * RESIDUAL_SCALE if values.size else 0.0


def noise_sigma(grey: np.ndarray, where: np.ndarray, detail: np.ndarray | None = None) -> float:
    """Sensor-noise sigma of ``grey`` over ``where``: :func:`residual_noise` at Immerkær's level
    (``detail``: ``high_pass(grey)`` when already computed)."""
    return residual_noise(grey, where, immerkaer_sigma(grey, where), detail)


def blur_sigma(grey: np.ndarray, where: np.ndarray) -> float:
    """Gaussian sigma (px) of the image's edges over ``where`` by re-blurring: a step blurred by s has
    a gradient peak ~ 1/s, so re-blurring by 1 px scales strong gradients by r = s / sqrt(s² + 1)."""
    def strong(image: np.ndarray) -> float:
        gx = cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=3)
        if np.count_nonzero(where) >= 16:  # the magnitude only where it is read
            gx, gy = gx[where], gy[where]
        return float(np.percentile(np.sqrt(gx * gx + gy * gy).ravel(), 98))

    sharp = strong(grey)
    if sharp < 8.0:  # nearly flat: nothing to measure the optics by
        return 0.6
    ratio = min(strong(cv2.GaussianBlur(grey, (7, 7), 1.0)) / sharp, 0.95)
    return float(np.clip(ratio / math.sqrt(1.0 - ratio * ratio), 0.4, 2.5))


def light_direction(grey: np.ndarray, where: np.ndarray) -> tuple[tuple[float, float], float]:
    """The image-plane direction towards the light and a confidence in [0, 1]: on a Lambertian surface
    with no preferred orientation, the mean luminance gradient of the shading points at the light
    (Pentland's estimator), measured on a smoothed image so texture averages out."""
    smooth = cv2.GaussianBlur(grey, (0, 0), 3.0)
    gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3)[where]
    gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3)[where]
    if gx.size < 16:
        return DEFAULT_LIGHT, 0.0
    mx, my = float(gx.mean()), float(gy.mean())
    confidence = math.hypot(mx, my) / max(float(np.sqrt(gx * gx + gy * gy).mean()), 1e-6)
    if confidence < GUESSED_LIGHT:
        return DEFAULT_LIGHT, round(confidence, 3)
    norm = math.hypot(mx, my)
    return (mx / norm, my / norm), confidence


def measure(crop: np.ndarray, grey: np.ndarray, region: np.ndarray, surround: np.ndarray,
            smooth: np.ndarray | None = None) -> Photometry:
    """Noise, blur and light of ``crop`` (float32 RGB; ``grey``: its float32 luminance, ``smooth``: that
    by :func:`smooth_grey`, when already made) measured on the ``surround`` of the region (on the rest
    of the crop when the surround is too thin, on the whole crop when the region covers it)."""
    where = surround if np.count_nonzero(surround) >= 16 else ~region
    if np.count_nonzero(where) < 16:
        where = np.ones_like(region)
    light, confidence = light_direction(grey, where)
    monochrome = bool(np.abs(crop[..., 0] - crop[..., 1]).max() < 1.0 and np.abs(crop[..., 1] - crop[..., 2]).max() < 1.0)
    detail = high_pass(grey)
    around = np.abs(detail[where])
    return Photometry(noise=noise_sigma(grey, where, detail), blur=blur_sigma(grey, where), light=light,
                      light_confidence=confidence, monochrome=monochrome,
                      texture=float(around.mean()), fine=robust_sigma(fine_pass(grey, smooth)[where]))


def robust_sigma(values: np.ndarray) -> float:
    """1.4826 x the median absolute deviation of ``values``: their spread with outliers (edges) left out."""
    if values.size == 0:
        return 0.0
    return median(np.abs(values - values.dtype.type(median(values)))) * 1.4826
