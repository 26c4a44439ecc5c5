"""Candidate N (RULE-night-model.md) against the shipped trio on fold 1's held-out faces: colour, grey, night, glare
(the frames of benchmarks/night_frames.py), annotated boxes, argmax with each model's doubt rule.
Run from the repository root with the candidate's file as the argument."""
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, "benchmarks")
from night_frames import glare, grey, night  # noqa: E402

from maskwatch.classifier import Classifier  # noqa: E402
from maskwatch.data.images import read_image  # noqa: E402
from maskwatch.data.photos import annotated_faces, photo_split  # noqa: E402

DATA = Path("../shared/datasets/face-mask-detection").resolve()
# "shipped": the trio as it was decided against (since night.onnx shipped, Classifier.load() routes grey frames to it)
models = {"shipped": Classifier.load(night=False), "N": Classifier.load(sys.argv[1], gate=False, closeup=False, night=False)}
rng = np.random.default_rng(0)
rows = {(m, f): {"truth": [], "called": []} for m in models for f in ("colour", "grey", "night", "glare")}
for ann in photo_split(DATA, seed=0).val:
    faces = annotated_faces(ann)
    if not faces:
        continue
    photo = read_image(DATA / "images" / ann.filename)
    frames = {"colour": photo, "grey": grey(photo), "night": night(photo, rng), "glare": glare(photo, faces)}
    for fname, frame in frames.items():
        for mname, model in models.items():
            for face, answer in zip(faces, model.predict_boxes(frame, faces)):
                rows[mname, fname]["truth"].append(face.label)
                rows[mname, fname]["called"].append(answer.label)
out = {}
for (m, f), r in rows.items():
    t, c = np.array(r["truth"]), np.array(r["called"])
    out[f"{m}/{f}"] = {"faces": len(t), "accuracy": round(float(np.mean(t == c)), 4),
                       "unassessable": int(np.sum(c == "unassessable")),
                       "wrongly_worn_caught": int(np.sum((t == "mask_weared_incorrect") & (c == t))),
                       "bare_called_masked": int(np.sum((t == "without_mask") & (c == "with_mask"))),
                       "masked_called_bare": int(np.sum((t == "with_mask") & (c == "without_mask")))}
    print(f"{m:8s} {f:7s} {out[f'{m}/{f}']}")
s, n = out, out
checks = {
    "1 grey accuracy >= shipped + 0.02": n["N/grey"]["accuracy"] >= s["shipped/grey"]["accuracy"] + 0.02,
    "2 grey bare called masked <= half": n["N/grey"]["bare_called_masked"] <= s["shipped/grey"]["bare_called_masked"] // 2,
    "3 grey wrongly worn caught >=": n["N/grey"]["wrongly_worn_caught"] >= s["shipped/grey"]["wrongly_worn_caught"],
    "4 night accuracy >=": n["N/night"]["accuracy"] >= s["shipped/night"]["accuracy"],
    "5 glare accuracy >=": n["N/glare"]["accuracy"] >= s["shipped/glare"]["accuracy"],
}
for k, v in checks.items():
    print(k, "HOLDS" if v else "FAILS")
out["checks"] = checks
Path(__file__).with_name("score.json").write_text(json.dumps(out, indent=1))
