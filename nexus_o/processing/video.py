"""Video frames -> Qwen2.5-VL video patches, without torchvision.

transformers' `Qwen2VLVideoProcessor` needs torchvision, which does not import beside torch
2.13 here, so frames are resized with PIL (bicubic, as the image processor), normalised with the
image processor's mean and std, and patchified here in the layout Qwen2.5-VL's vision tower expects (the same as the video processor's):
frames padded to a multiple of `temporal_patch_size` by repeating the last, then
(t, tp, c, h/m, m, p, w/m, m, p) -> (t, h/m, w/m, m, m, c, tp, p, p).
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

from nexus_o.processing.media_decoding import Video


def patchify_video(video: Video, image_processor, max_pixels: int | None = None) -> tuple[np.ndarray, list[int], float]:
    """One video -> (patches [t*h*w, C*tp*p*p], grid [t, h, w], seconds per temporal grid step)."""
    ip = image_processor
    patch, merge, tps = ip.patch_size, ip.merge_size, ip.temporal_patch_size
    frames = video.frames
    height, width = frames.shape[1:3]
    limit = max_pixels or ip.size["longest_edge"]
    new_h, new_w = smart_resize(height, width, factor=patch * merge, min_pixels=ip.size["shortest_edge"],
                                max_pixels=limit)
    mean = np.asarray(ip.image_mean, dtype=np.float32)[:, None, None]
    std = np.asarray(ip.image_std, dtype=np.float32)[:, None, None]
    pixels = []
    for frame in frames:
        img = Image.fromarray(frame).resize((new_w, new_h), resample=Image.Resampling.BICUBIC)
        arr = np.asarray(img, dtype=np.float32).transpose(2, 0, 1) * ip.rescale_factor
        pixels.append((arr - mean) / std if ip.do_normalize else arr)
    clip = np.stack(pixels)  # [T, C, H, W]
    if pad := -clip.shape[0] % tps:
        clip = np.concatenate([clip, np.repeat(clip[-1:], pad, axis=0)])
    t, c = clip.shape[0] // tps, clip.shape[1]
    gh, gw = new_h // patch, new_w // patch
    patches = clip.reshape(t, tps, c, gh // merge, merge, patch, gw // merge, merge, patch)
    patches = patches.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)
    return patches.reshape(t * gh * gw, c * tps * patch * patch), [t, gh, gw], tps / video.fps
