"""`maskwatch batch`'s step for one file (score_file: detect's loop into the file's own output folder,
JSON lines only) over a folder of photos, at one commit: run it from two checkouts in turn to compare
them side by side (models loaded and one photo scored before the clock starts).

    PYTHONPATH=<checkout>/src python benchmarks/batch_ab.py [PHOTOS] [--limit 40]

Prints the CPU and wall milliseconds per photo (one thread, as a batch actor runs) and the faces
found. docs/bench-capacity.md has a run.
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

from maskwatch.runtime import single_threaded
from maskwatch.scale.files import BatchFile, ScoreOptions, score_file

SAMPLE = Path(__file__).resolve().parents[1] / "sample" / "face-mask-detection" / "images"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photos", type=Path, nargs="?", default=SAMPLE, help="a folder of photos (the bundled sample's)")
    parser.add_argument("--limit", type=int, default=40, help="the first N photos, sorted")
    args = parser.parse_args()
    photos = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))[:args.limit]
    if not photos:
        parser.error(f"{args.photos}: no .png or .jpg photo there")
    options = ScoreOptions(save_media=False)
    detector = options.models.load(threads=single_threaded())
    with tempfile.TemporaryDirectory() as out:
        score_file(BatchFile(str(photos[0]), "warm-up", "photo"), Path(out), detector, options)
        cpu, wall = time.process_time(), time.perf_counter()
        rows = [score_file(BatchFile(str(p), f"{i}", "photo"), Path(out), detector, options) for i, p in enumerate(photos)]
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    failed = [row["file"] for row in rows if row["status"] != "done"]
    print(f"{len(photos)} photos: {1000 * cpu / len(photos):.1f} ms CPU, {1000 * wall / len(photos):.1f} ms wall per photo; "
          f"{sum(row['faces'] for row in rows)} faces; load {os.getloadavg()[0]:.1f}"
          + (f"; failed: {failed}" if failed else ""))


if __name__ == "__main__":
    main()
