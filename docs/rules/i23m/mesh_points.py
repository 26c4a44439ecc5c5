"""468 mesh points (mediapipe 0.10.14's face_landmark) of every bare face of WORK/faces.csv whose box
is 24 px or more; run in /work/runs/mpvenv. Writes mesh.npz: face_ids, points (N x 468 x 2 photo px)."""
import csv, sys
from pathlib import Path
import cv2, numpy as np
import mediapipe as mp

work, data = Path(sys.argv[1]), Path(sys.argv[2])
rows = [r for r in csv.DictReader(open(work / "faces.csv")) if r["label"] == "without_mask"]
mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=False,
                                       min_detection_confidence=0.5)
ids, pts, tried = [], [], 0
photos = {}
for r in rows:
    x0, y0, x1, y1 = (float(r[k]) for k in ("xmin", "ymin", "xmax", "ymax"))
    long_side = max(x1 - x0, y1 - y0)
    if long_side < 24:
        continue
    tried += 1
    if r["image"] not in photos:
        photos[r["image"]] = cv2.imread(str(data / "images" / r["image"]))
    photo = photos[r["image"]]
    side = 2.0 * long_side
    scale = 256 / side
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    warp = np.array([[scale, 0, 128 - cx * scale], [0, scale, 128 - cy * scale]], np.float32)
    crop = cv2.warpAffine(photo, warp, (256, 256), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    res = mesh.process(crop[:, :, ::-1].copy())
    if not res.multi_face_landmarks:
        continue
    p = np.array([[l.x * 256, l.y * 256] for l in res.multi_face_landmarks[0].landmark], np.float32)
    p = (p - warp[:, 2]) / scale
    nx, ny = p[1]
    if not (x0 <= nx <= x1 and y0 <= ny <= y1):
        continue
    ids.append(r["face_id"]); pts.append(p)
np.savez(work.parent / "mesh.npz", face_ids=np.array(ids), points=np.stack(pts))
print(f"bare faces {len(rows)}, >= 24 px {tried}, mesh found {len(ids)}")
