"""WORK-grey: the seed-0 classifier work folder's crops as grey (luminance in all three channels); same split."""
import shutil
import sys
from pathlib import Path

import cv2

src, dst = Path(sys.argv[1]), Path(sys.argv[2])
for name in ("faces.csv", "prepare.json", "split.csv", "skipped.csv"):
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copy(src / name, dst / name)
n = 0
for path in (src / "crops").rglob("*.png"):
    out = dst / path.relative_to(src)
    out.parent.mkdir(parents=True, exist_ok=True)
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    cv2.imwrite(str(out), cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR))
    n += 1
print(n, "crops made grey")
