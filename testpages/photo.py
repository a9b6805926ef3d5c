"""Simulated phone photos of a page: the sheet on a darker table, in perspective, shaded, colour JPEG."""
from __future__ import annotations

import cv2
import numpy as np

from testpages import degrade


def phone_photo(page: np.ndarray, *, corners=None, size=(3000, 4000), table: int = 90, shade: float = 0.45,
                blur: float = 1.2, quality: int = 80, seed: int = 0) -> tuple[bytes, np.ndarray]:
    """JPEG bytes of a colour photo of `page`, and the true corners (tl, tr, br, bl) in the photo."""
    rng = np.random.default_rng(seed)
    h, w = page.shape
    W, H = size
    if corners is None:
        corners = [[0.13 * W, 0.105 * H], [0.88 * W, 0.075 * H], [0.93 * W, 0.925 * H], [0.08 * W, 0.89 * H]]
    dst = np.float32(corners)
    m = cv2.getPerspectiveTransform(np.float32([[0, 0], [w, 0], [w, h], [0, h]]), dst)
    backdrop = np.clip(rng.normal(table, 8, (H, W)), 0, 255).astype(np.uint8)
    warped = cv2.warpPerspective(page, m, (W, H), borderValue=0)
    inside = cv2.warpPerspective(np.full_like(page, 255), m, (W, H))
    photo = np.where(inside > 0, warped, backdrop).astype(np.uint8)
    photo = degrade.blur(degrade.shadow(photo, shade, seed=seed), blur)
    bgr = cv2.merge([np.clip(photo * 0.9, 0, 255).astype(np.uint8), np.clip(photo * 0.97, 0, 255).astype(np.uint8), photo])
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes(), dst
