"""A mask renderer: masks drawn on bare faces of the training photos, placed by landmarks.

The dataset holds 123 wrongly worn masks, most under 40 px. People wear masks wrongly in a few
ways (below the nose, on the chin, hanging off one ear), and a bare face with its landmarks tells
where each would sit. From every bare training face this renders the same face with a mask worn
right (`with_mask`) and worn wrongly (`mask_weared_incorrect`), so rendering itself is never the
cue; mask textures are cut from the real masks of the training photos; some renders get a hand
at the mask (people adjust masks); each render is shrunk to a random size from 10 px to the
source face's own and brought back to the crop size as serving does, so a small render is as
blurred as a small real face.

Renders are made once per work folder (`maskwatch render WORK`) into WORK/rendered.npz and
remember their source face, so training on a fold draws only renders of that fold's training
faces.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from maskwatch.faces import CLASSES

# Where a rendered mask sits, and the label that makes it.
POSITIONS = {"worn": "with_mask", "below_nose": "mask_weared_incorrect",
             "on_chin": "mask_weared_incorrect", "hanging": "mask_weared_incorrect"}
WRONG_POSITIONS = ("below_nose", "on_chin", "hanging")
WRONG_WEIGHTS = (0.5, 0.35, 0.15)
# Plain colours of common masks (BGR), for some renders: surgical blue, white, black, grey, pink.
PLAIN_COLOURS = ((225, 205, 165), (240, 240, 240), (35, 35, 35), (150, 150, 150), (200, 185, 235))


@dataclass(frozen=True)
class RenderSettings:
    """hand: share of renders with a hand at the mask. plain: share with a plain-coloured mask
    instead of a real texture. min_side: the smallest face a render is shrunk to (px)."""

    hand: float = 0.3
    plain: float = 0.25
    min_side: int = 10
    jpeg: float = 0.5


def mask_texture(photo: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray | None:
    """The fabric of a real worn mask: the lower middle of a `with_mask` face's box."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    if min(w, h) < 24:
        return None
    tx0, tx1 = int(round(x0 + 0.18 * w)), int(round(x1 - 0.18 * w))
    ty0, ty1 = int(round(y0 + 0.55 * h)), int(round(y0 + 0.88 * h))
    texture = photo[max(ty0, 0):ty1, max(tx0, 0):tx1]
    return texture.copy() if texture.size and min(texture.shape[:2]) >= 6 else None


def _face_axes(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float, float, float]:
    """The face's frame from its landmarks: origin on the centre line at eye level, u across
    (left to right), v down; eye distance; eye-to-mouth depth; nose depth; yaw (-1..1)."""
    le, re, nose, ml, mr = points
    eyes, mouth = (le + re) / 2, (ml + mr) / 2
    across = re - le
    eye_dist = float(np.hypot(*across)) or 1.0
    u = across / eye_dist
    v = np.array([-u[1], u[0]])
    depth = max(float(np.dot(mouth - eyes, v)), 0.3 * eye_dist)
    nose_depth = float(np.clip(np.dot(nose - eyes, v), 0.3 * depth, 0.85 * depth))
    yaw = float(np.clip(np.dot(nose - eyes, u) / eye_dist, -0.6, 0.6))
    origin = eyes + 0.5 * np.dot(nose - eyes, u) * u
    return origin, u, v, eye_dist, depth, nose_depth, yaw


def mask_polygon(points: np.ndarray, position: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The mask's outline (N x 2 pixels) and the 3 corners its texture maps to, for `position`."""
    origin, u, v, eye_dist, depth, nose_depth, yaw = _face_axes(points)
    chin = depth * rng.uniform(1.55, 1.8)  # the mask's lower edge, below the chin
    if position == "worn":
        top = nose_depth * rng.uniform(0.35, 0.65)
        bulge = 0.12 * depth
    elif position == "below_nose":
        top = nose_depth + (depth - nose_depth) * rng.uniform(0.1, 0.55)
        bulge = 0.03 * depth
    else:  # on_chin, hanging
        top = depth * rng.uniform(1.12, 1.35)
        chin = depth * rng.uniform(1.8, 2.05)
        bulge = 0.0
    half = eye_dist * rng.uniform(0.95, 1.2)
    left, right = half * (1 + 1.2 * yaw), half * (1 - 1.2 * yaw)
    s = np.linspace(-1, 1, 13)
    widths = np.where(s < 0, left, right) * np.abs(s) * np.sign(s)
    top_edge = top - bulge * (1 - s ** 2) + 0.08 * depth * s ** 2
    bottom_edge = top_edge + (chin - top_edge) * (0.45 + 0.55 * np.sqrt(1 - s ** 2))
    upper = origin + widths[:, None] * u + top_edge[:, None] * v
    lower = origin + 0.9 * widths[::-1, None] * u + bottom_edge[::-1, None] * v
    outline = np.concatenate([upper, lower])
    if position == "hanging":  # off one ear: swung down and sideways about that ear
        side = rng.choice([-1, 1])
        pivot = origin + side * (left if side < 0 else right) * u + top * v
        angle = side * rng.uniform(20, 40)
        turn = cv2.getRotationMatrix2D((float(pivot[0]), float(pivot[1])), angle, 1.0)
        outline = outline @ turn[:, :2].T + turn[:, 2]
    corners = np.array([outline[0], outline[12], outline[-1]], np.float32)
    return outline.astype(np.float32), corners


def _texture_of(texture: np.ndarray | None, rng: np.random.Generator, settings: RenderSettings) -> np.ndarray:
    if texture is None or rng.random() < settings.plain:
        colour = np.array(PLAIN_COLOURS[rng.integers(len(PLAIN_COLOURS))], np.float32)
        shade = rng.normal(1.0, 0.04, (24, 32, 1)).astype(np.float32)
        pleats = 1 + 0.06 * np.sin(np.linspace(0, rng.uniform(6, 14), 24))[:, None, None]
        plain = colour * cv2.GaussianBlur(shade, (5, 5), 0)[..., None] * pleats
        return np.clip(plain, 0, 255).astype(np.uint8)
    out = texture.astype(np.float32)
    out = out * rng.uniform(0.8, 1.15) + rng.normal(0, 6, 3)  # exposure and white balance
    return np.clip(out, 0, 255).astype(np.uint8)


def draw_mask(patch: np.ndarray, points: np.ndarray, position: str, texture: np.ndarray | None,
              rng: np.random.Generator, settings: RenderSettings = RenderSettings()) -> np.ndarray:
    """`patch` (BGR) with a mask drawn at `position` over the face whose landmarks are `points`."""
    outline, corners = mask_polygon(points, position, rng)
    tex = _texture_of(texture, rng, settings)
    th, tw = tex.shape[:2]
    warp = cv2.getAffineTransform(np.float32([[0, 0], [tw, 0], [0, th]]), corners)
    h, w = patch.shape[:2]
    fabric = cv2.warpAffine(tex, warp, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    alpha = np.zeros((h, w), np.float32)
    cv2.fillPoly(alpha, [np.round(outline).astype(np.int32)], 1.0)
    eye_dist = float(np.hypot(*(points[1] - points[0])))
    # Light from above: the mask darkens towards its lower edge; its border is soft.
    _, _, v, _, depth, _, _ = _face_axes(points)
    ys = (np.mgrid[0:h, 0:w][::-1].transpose(1, 2, 0) - outline[:12].mean(axis=0)) @ v
    shading = np.clip(1.05 - 0.25 * ys / (1.6 * depth), 0.7, 1.1)[..., None]
    out = patch.astype(np.float32)
    loops = rng.random() < 0.7 and position != "hanging"
    if loops:  # ear loops: thin strings from the mask's upper corners towards the ears
        colour = tuple(float(c) for c in np.median(tex.reshape(-1, 3), axis=0))
        thick = max(1, int(round(eye_dist / 30)))
        for corner, ear in ((outline[0], points[0] - 0.9 * (points[1] - points[0])),
                            (outline[12], points[1] + 0.9 * (points[1] - points[0]))):
            cv2.line(out, tuple(int(round(c)) for c in corner), tuple(int(round(c)) for c in ear), colour, thick,
                     cv2.LINE_AA)
    sigma = max(0.6, eye_dist / 40)
    alpha = cv2.GaussianBlur(alpha, (0, 0), sigma)[..., None]
    out = out * (1 - alpha) + fabric.astype(np.float32) * shading * alpha
    return np.clip(out, 0, 255).astype(np.uint8)


def draw_hand(patch: np.ndarray, points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A hand at one side of the face, fingers up at the mask's edge, in the face's own skin tone
    (taken above the eyes): people adjusting a mask hold it there."""
    origin, u, v, eye_dist, depth, _, _ = _face_axes(points)
    h, w = patch.shape[:2]
    fx, fy = np.round(origin - 0.35 * depth * v).astype(int)
    r = max(1, int(eye_dist / 6))
    skin_area = patch[max(fy - r, 0):fy + r + 1, max(fx - r, 0):fx + r + 1].reshape(-1, 3)
    skin = np.median(skin_area, axis=0) if len(skin_area) else np.array([120, 140, 180])
    skin = skin.astype(np.float32) * rng.uniform(0.85, 1.1)
    side = rng.choice([-1, 1])
    base = origin + side * eye_dist * rng.uniform(0.8, 1.3) * u + depth * rng.uniform(0.9, 1.5) * v
    alpha = np.zeros((h, w), np.float32)
    lean = rng.uniform(-25, 25)
    angle = float(np.degrees(np.arctan2(u[1], u[0]))) + 90 + lean
    fingers = rng.integers(2, 5)
    length, width = depth * rng.uniform(0.5, 0.8), depth * rng.uniform(0.11, 0.16)
    for k in range(fingers):
        tip = base - (0.6 * length) * v + (k - (fingers - 1) / 2) * 1.8 * width * u * side
        cv2.ellipse(alpha, (int(tip[0]), int(tip[1])), (max(1, int(length / 2)), max(1, int(width))),
                    angle, 0, 360, 1.0, -1)
    palm = base + side * 0.6 * length * u + 0.3 * length * v
    cv2.ellipse(alpha, (int(palm[0]), int(palm[1])), (max(1, int(0.8 * length)), max(1, int(0.6 * length))),
                angle, 0, 360, 1.0, -1)
    alpha = cv2.GaussianBlur(alpha, (0, 0), max(0.6, eye_dist / 40))[..., None]
    grain = rng.normal(1.0, 0.03, (h, w, 1)).astype(np.float32)
    out = patch.astype(np.float32) * (1 - alpha) + skin * grain * alpha
    return np.clip(out, 0, 255).astype(np.uint8)


def shrink_like_a_camera(crop: np.ndarray, side: int, jpeg_quality: int | None) -> np.ndarray:
    """A size-px crop as a face of `side` px would reach the classifier: area-shrunk to that
    side, optionally JPEG-compressed there, and enlarged back with cubic interpolation (as
    resize_patch enlarges small faces)."""
    size = crop.shape[0]
    if side >= size:
        return crop
    small = cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA)
    if jpeg_quality is not None:
        ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
        small = cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else small
    return cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)


def render_face(photo: np.ndarray, box: tuple[float, float, float, float], points: np.ndarray, position: str,
                texture: np.ndarray | None, rng: np.random.Generator, size: int = 96,
                settings: RenderSettings = RenderSettings()) -> np.ndarray:
    """One render: the face at `box` of `photo` with a mask at `position`, as a size x size crop
    of exactly the box (the classifier's crop), shrunk like a camera would see it."""
    x0, y0, x1, y1 = box
    long_side = max(x1 - x0, y1 - y0, 1.0)
    # Drawn at 2x the crop size on a patch with context, so the mask's edges and loops reach
    # past the box as they do on real faces.
    scale = 2 * size / long_side
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    side = int(round(1.5 * long_side * scale))
    warp = np.array([[scale, 0, side / 2 - cx * scale], [0, scale, side / 2 - cy * scale]], np.float32)
    patch = cv2.warpAffine(photo, warp, (side, side), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    local = points * scale + warp[:, 2]
    drawn = draw_mask(patch, local, position, texture, rng, settings)
    if rng.random() < settings.hand:
        drawn = draw_hand(drawn, local, rng)
    bx0, by0 = (np.array([x0, y0]) * scale + warp[:, 2]).round().astype(int)
    bx1, by1 = (np.array([x1, y1]) * scale + warp[:, 2]).round().astype(int)
    crop = cv2.resize(drawn[max(by0, 0):by1, max(bx0, 0):bx1], (size, size), interpolation=cv2.INTER_AREA)
    # Never sharper than the source face was (a 20-px face enlarged is blurred), often smaller.
    top = int(min(size, max(settings.min_side + 2, 1.5 * long_side)))
    target = int(round(np.exp(rng.uniform(np.log(settings.min_side), np.log(top)))))
    quality = int(rng.uniform(35, 95)) if rng.random() < settings.jpeg else None
    return shrink_like_a_camera(crop, target, quality)


@dataclass(frozen=True)
class RenderedFaces:
    """Renders of a work folder: images N x S x S x 3 BGR uint8, labels (class indices),
    the face_id each was rendered from, the face_id its mask texture came from ("" for a plain
    colour) and its position."""

    images: np.ndarray
    labels: np.ndarray
    sources: np.ndarray
    textures: np.ndarray
    positions: np.ndarray

    def of_sources(self, face_ids) -> np.ndarray:
        """Row numbers of the renders made only from these faces (face and mask texture): a
        fold trains on renders of its own training faces, never of held-out ones."""
        allowed = np.asarray(list(face_ids) + [""])
        return np.flatnonzero(np.isin(self.sources, allowed) & np.isin(self.textures, allowed))

    def save(self, path: Path) -> None:
        from maskwatch.atomic import atomic_path

        with atomic_path(Path(path)) as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, images=self.images, labels=self.labels, sources=self.sources,
                                    textures=self.textures, positions=self.positions)

    @classmethod
    def load(cls, path: Path) -> RenderedFaces:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no renders; run `maskwatch render WORK` first")
        with np.load(path) as z:
            return cls(z["images"], z["labels"], z["sources"], z["textures"], z["positions"])


def positions_for(rng: np.random.Generator, per_face: int) -> list[str]:
    """Half worn right, half wrongly (the wrong ways by how often people wear them so)."""
    wrong = rng.choice(WRONG_POSITIONS, per_face // 2, p=WRONG_WEIGHTS).tolist()
    return ["worn"] * (per_face - len(wrong)) + wrong


def label_index(position: str) -> int:
    return CLASSES.index(POSITIONS[position])


def render_work(rows: list[dict], data_dir: Path | list[Path], size: int, per_face: int = 4, seed: int = 0,
                settings: RenderSettings = RenderSettings(), progress: bool = True) -> RenderedFaces:
    """Renders of every bare face among faces.csv `rows` (photos under data_dir/images, or the
    images/ of one of several folders: `prepare` refuses one name in two), with textures from the
    rows' masked faces: per_face renders each, half worn right."""
    from maskwatch.data.images import read_image
    from maskwatch.progress import progress_bar
    from maskwatch.training.classifier.landmarks import LandmarkFinder, landmark_template

    rng = np.random.default_rng(seed)
    photos: dict[str, np.ndarray] = {}

    folders = [Path(data_dir)] if isinstance(data_dir, (str, Path)) else [Path(d) for d in data_dir]

    def photo(name: str) -> np.ndarray:
        if name not in photos:
            found = [folder / "images" / name for folder in folders if (folder / "images" / name).is_file()]
            photos[name] = read_image(found[0] if found else folders[0] / "images" / name)
        return photos[name]

    def box_of(row: dict) -> tuple[float, float, float, float]:
        return tuple(float(row[k]) for k in ("xmin", "ymin", "xmax", "ymax"))

    textures = [(r["face_id"], t) for r in rows if r["label"] == "with_mask"
                for t in [mask_texture(photo(r["image"]), box_of(r))] if t is not None]
    if not textures:
        raise ValueError("no masked face of 24 px or more to take a mask texture from")
    bare = [r for r in rows if r["label"] == "without_mask"]
    finder = LandmarkFinder()
    found = [finder.find(photo(r["image"]), box_of(r)) for r in
             progress_bar(bare, desc="landmarks", unit="face", disable=not progress)]
    template = landmark_template(np.array([box_of(r) for r in bare]), found)
    images, labels, sources, texture_ids, positions = [], [], [], [], []
    for row, marks in zip(progress_bar(bare, desc="render", unit="face", disable=not progress), found):
        box = box_of(row)
        points = marks.points if marks.measured else finder.from_template(box, template).points
        for position in positions_for(rng, per_face):
            texture_id, texture = textures[rng.integers(len(textures))]
            crop = render_face(photo(row["image"]), box, points, position, texture, rng, size, settings)
            images.append(crop)
            labels.append(label_index(position))
            sources.append(row["face_id"])
            texture_ids.append(texture_id)
            positions.append(position)
    return RenderedFaces(np.stack(images), np.array(labels, np.int64), np.array(sources),
                         np.array(texture_ids), np.array(positions))
