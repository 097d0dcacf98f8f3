"""Classify images with a SqueezeLens ONNX export, using onnxruntime, numpy and Pillow only.

    python classify_onnx.py model.onnx photo.jpg [more.jpg ...]

Everything it needs (class names, preprocessing) is in the file's metadata; docs/EXPORT.md.
"""
import io
import json
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageCms, ImageOps

sess = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
meta = {k: json.loads(v) for k, v in sess.get_modelmeta().custom_metadata_map.items() if k.startswith("squeezelens_")}
names, prep = meta["squeezelens_class_names"], meta["squeezelens_preprocessing"]
for path in sys.argv[2:]:
    with Image.open(path) as im:
        icc, img = im.info.get("icc_profile"), ImageOps.exif_transpose(im)  # upright
    base = img.mode.removesuffix("A")
    if icc and base in ("RGB", "L", "CMYK"):  # colour profile (Display P3, Adobe RGB, CMYK...) -> sRGB
        try:
            srgb = ImageCms.profileToProfile(img.convert(base), io.BytesIO(icc), ImageCms.createProfile("sRGB"),
                                             renderingIntent=ImageCms.Intent.PERCEPTUAL, outputMode="RGB")
            if base != img.mode:
                srgb.putalpha(img.getchannel("A"))
            img = srgb
        except (OSError, ImageCms.PyCMSError):
            pass  # unreadable, or for another colour space: ignored, as the app does
    img = img.convert("RGBA")  # transparency on white
    img = Image.alpha_composite(Image.new("RGBA", img.size, "white"), img).convert("RGB")
    side, (ch, cw), (w, h) = prep["resize_shorter_side"], prep["crop_size"], img.size
    w, h = (side, int(side * h / w)) if w <= h else (int(side * w / h), side)
    img = img.resize((w, h), getattr(Image.Resampling, prep["interpolation"].upper()))
    top, left = round((h - ch) / 2), round((w - cw) / 2)  # centre crop
    x = np.asarray(img.crop((left, top, left + cw, top + ch)), np.float32).transpose(2, 0, 1) / 255
    x = (x - np.float32(prep["mean"]).reshape(3, 1, 1)) / np.float32(prep["std"]).reshape(3, 1, 1)
    logits = sess.run(None, {sess.get_inputs()[0].name: x[None]})[0][0].astype(np.float64)
    p = np.exp(logits - logits.max())
    p /= p.sum()
    print(json.dumps({"path": path, "top": [{"index": int(i), "label": names[i], "prob": float(p[i])}
                                            for i in np.argsort(-p, kind="stable")[:5]]}))
