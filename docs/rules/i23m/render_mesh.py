"""Candidate M's renders: the shipped renderer (maskwatch.training.classifier.masks) with the mask's
region taken from a 468-point mesh (mesh.npz of mesh_points.py) where a face has one; RULE-mesh.md.
    PYTHONPATH=src python render_mesh.py WORK DATA MESH.npz OUT.npz
"""
import csv, sys
from pathlib import Path
import cv2, numpy as np
from maskwatch.training.classifier import masks as M
from maskwatch.training.classifier.landmarks import LandmarkFinder, landmark_template
from maskwatch.data.images import read_image

OVAL = [10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148, 176,
        149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109]


def mesh_axes(m):
    le, re = (m[33] + m[133]) / 2, (m[362] + m[263]) / 2
    if le[0] > re[0]:
        le, re = re, le
    eye_dist = float(np.hypot(*(re - le))) or 1.0
    u = (re - le) / eye_dist
    v = np.array([-u[1], u[0]])
    origin = (le + re) / 2
    depth = max(float(np.dot(m[152] - origin, v)), 0.5 * eye_dist)
    return origin, u, v, eye_dist, depth


def lerp(a, b, t):
    return a + (b - a) * t


def draw_mask_mesh(patch, m, position, texture, rng, settings):
    origin, u, v, eye_dist, depth = mesh_axes(m)
    h, w = patch.shape[:2]
    oval = m[OVAL]
    centre = oval.mean(axis=0)
    grown = centre + 1.06 * (oval - centre)
    ov = (grown - origin) @ v
    v_mouth, v_chin = float((m[13] - origin) @ v), float((m[152] - origin) @ v)
    below = np.clip((ov - v_mouth) / max(v_chin - v_mouth, 1e-3), 0, 1)
    grown = grown + (0.10 * depth * below)[:, None] * v
    if position == "worn":
        anchor, drop = lerp(m[168], m[1], rng.uniform(0.35, 0.65)), 0.20 * depth
    elif position == "below_nose":
        low = lerp(m[0], m[17], 0.25)
        t = rng.uniform(0, 1)
        anchor = lerp(m[2], m[0], min(2 * t, 1)) if t < 0.5 else lerp(m[0], low, 2 * t - 1)
        drop = 0.05 * depth
    else:
        anchor, drop = lerp(m[17], m[152], rng.uniform(0, 1 / 3)), 0.03 * depth
    ua, va = float((anchor - origin) @ u), float((anchor - origin) @ v)
    gu = (grown - origin) @ u
    left, right = ua - gu.min(), gu.max() - ua
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    pu = (xx - origin[0]) * u[0] + (yy - origin[1]) * u[1]
    pv = (xx - origin[0]) * v[0] + (yy - origin[1]) * v[1]
    s = np.where(pu < ua, (pu - ua) / max(left, 1e-3), (pu - ua) / max(right, 1e-3))
    top = va + drop * np.clip(s, -1, 1) ** 2
    alpha = np.zeros((h, w), np.float32)
    cv2.fillPoly(alpha, [np.round(grown).astype(np.int32)], 1.0)
    alpha *= (pv >= top).astype(np.float32)
    v_bottom = float(((grown - origin) @ v).max())
    ul = origin + gu.min() * u + (va + drop) * v
    ur = origin + gu.max() * u + (va + drop) * v
    ll = ul + (v_bottom - (va + drop)) * v
    corners = np.array([ul, ur, ll], np.float32)
    tex = M._texture_of(texture, rng, settings)
    th, tw = tex.shape[:2]
    warp = cv2.getAffineTransform(np.float32([[0, 0], [tw, 0], [0, th]]), corners)
    fabric = cv2.warpAffine(tex, warp, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    if position == "hanging":
        side = rng.choice([-1, 1])
        pivot = ul if side < 0 else ur
        turn = cv2.getRotationMatrix2D((float(pivot[0]), float(pivot[1])), side * rng.uniform(20, 40), 1.0)
        alpha = cv2.warpAffine(alpha, turn, (w, h))
        fabric = cv2.warpAffine(fabric, turn, (w, h), borderMode=cv2.BORDER_REFLECT)
    ys = pv - va
    shading = np.clip(1.05 - 0.25 * ys / (1.6 * depth), 0.7, 1.1)[..., None]
    out = patch.astype(np.float32)
    loops = rng.random() < 0.7 and position != "hanging"
    if loops:
        colour = tuple(float(c) for c in np.median(tex.reshape(-1, 3), axis=0))
        thick = max(1, int(round(eye_dist / 30)))
        ears = (m[234], m[454]) if m[234][0] < m[454][0] else (m[454], m[234])
        for corner, ear, sign in ((ul, ears[0], -1), (ur, ears[1], 1)):
            ear = ear + sign * 0.3 * eye_dist * u
            cv2.line(out, tuple(int(round(c)) for c in corner), tuple(int(round(c)) for c in ear), colour, thick,
                     cv2.LINE_AA)
    sigma = max(0.6, eye_dist / 40)
    alpha = cv2.GaussianBlur(alpha, (0, 0), sigma)[..., None]
    out = out * (1 - alpha) + fabric.astype(np.float32) * shading * alpha
    return np.clip(out, 0, 255).astype(np.uint8)


def render_face(photo, box, points, mesh, position, texture, rng, size, settings):
    """masks.render_face, with the mesh's mask where the face has a mesh."""
    x0, y0, x1, y1 = box
    long_side = max(x1 - x0, y1 - y0, 1.0)
    scale = 2 * size / long_side
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    side = int(round(1.5 * long_side * scale))
    warp = np.array([[scale, 0, side / 2 - cx * scale], [0, scale, side / 2 - cy * scale]], np.float32)
    patch = cv2.warpAffine(photo, warp, (side, side), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    local = points * scale + warp[:, 2]
    if mesh is None:
        drawn = M.draw_mask(patch, local, position, texture, rng, settings)
    else:
        drawn = draw_mask_mesh(patch, mesh * scale + warp[:, 2], position, texture, rng, settings)
    if rng.random() < settings.hand:
        drawn = M.draw_hand(drawn, local, rng)
    bx0, by0 = (np.array([x0, y0]) * scale + warp[:, 2]).round().astype(int)
    bx1, by1 = (np.array([x1, y1]) * scale + warp[:, 2]).round().astype(int)
    crop = cv2.resize(drawn[max(by0, 0):by1, max(bx0, 0):bx1], (size, size), interpolation=cv2.INTER_AREA)
    top = int(min(size, max(settings.min_side + 2, 1.5 * long_side)))
    target = int(round(np.exp(rng.uniform(np.log(settings.min_side), np.log(top)))))
    quality = int(rng.uniform(35, 95)) if rng.random() < settings.jpeg else None
    return M.shrink_like_a_camera(crop, target, quality)


def render_work(rows, data, meshes, size=96, per_face=4, seed=0, settings=M.RenderSettings(), only=None):
    """masks.render_work with meshes (face_id -> 468 x 2) passed on."""
    rng = np.random.default_rng(seed)
    photos = {}

    def photo(name):
        if name not in photos:
            photos[name] = read_image(data / "images" / name)
        return photos[name]

    def box_of(r):
        return tuple(float(r[k]) for k in ("xmin", "ymin", "xmax", "ymax"))

    textures = [(r["face_id"], t) for r in rows if r["label"] == "with_mask"
                for t in [M.mask_texture(photo(r["image"]), box_of(r))] if t is not None]
    bare = [r for r in rows if r["label"] == "without_mask"]
    if only is not None:
        bare = [r for r in bare if r["face_id"] in only]
    finder = LandmarkFinder()
    found = [finder.find(photo(r["image"]), box_of(r)) for r in bare]
    template = landmark_template(np.array([box_of(r) for r in bare]), found)
    images, labels, sources, texture_ids, positions = [], [], [], [], []
    for row, marks in zip(bare, found):
        box = box_of(row)
        points = marks.points if marks.measured else finder.from_template(box, template).points
        for position in M.positions_for(rng, per_face):
            texture_id, texture = textures[rng.integers(len(textures))]
            crop = render_face(photo(row["image"]), box, points, meshes.get(row["face_id"]), position, texture,
                               rng, size, settings)
            images.append(crop)
            labels.append(M.label_index(position))
            sources.append(row["face_id"])
            texture_ids.append(texture_id)
            positions.append(position)
    return M.RenderedFaces(np.stack(images), np.array(labels, np.int64), np.array(sources),
                           np.array(texture_ids), np.array(positions))


if __name__ == "__main__":
    work, data, mesh_file, out = (Path(a) for a in sys.argv[1:5])
    z = np.load(mesh_file)
    meshes = dict(zip(z["face_ids"].tolist(), z["points"]))
    rows = list(csv.DictReader(open(work / "faces.csv")))
    only = set(sys.argv[5].split(",")) if len(sys.argv) > 5 else None
    r = render_work(rows, data, meshes, only=only)
    r.save(out)
    print(len(r.images), "renders;", sum(f in meshes for f in r.sources), "from meshes")
