"""`maskwatch study`: the original study in one command, reproduced honestly.

Colour and grey crops, split by photo (honest) and by face (the study's leaky split), the seed
CNN trained on each, all four evaluated, and one report comparing them.
"""

from __future__ import annotations

import html
import json
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path

from maskwatch.atomic import write_text
from maskwatch.data.crops import CropSpec
from maskwatch.data.prepare import prepare
from maskwatch.data.split import SPLIT_MODES, split_faces, write_split_csv
from maskwatch.faces import CLASSES
from maskwatch.training.classifier.dataset import load_crop_dataset
from maskwatch.training.classifier.evaluate import evaluate_run
from maskwatch.training.classifier.train import TrainConfig, train_run

COLOURS = ("colour", "grey")


@dataclass(frozen=True)
class StudyConfig:
    size: int = 64
    margin: float = 0.0
    epochs: int = 10
    seed: int = 0
    val_fraction: float = 0.2


def run_study(data_dir: Path, out: Path, cfg: StudyConfig = StudyConfig(), progress: bool = True) -> Path:
    """Run the four-way study into `out` and return the path of report.html."""
    out = Path(out)
    started = time.perf_counter()
    train_cfg = TrainConfig(model="seed-cnn", epochs=cfg.epochs, seed=cfg.seed)  # refused before the crops, not after
    works = {}
    for number, colour in enumerate(COLOURS, 1):
        if progress:  # `make demo` showed two "prepare: 40/40 photo ... done" lines, neither saying which
            print(f"== crops {number} of {len(COLOURS)}: every annotated face, in {colour}", flush=True)
        spec = CropSpec(size=cfg.size, margin=cfg.margin, grey=colour == "grey")
        works[colour] = prepare(data_dir, out / "work" / colour, spec, progress=progress)
    data = load_crop_dataset(out / "work" / "colour")
    splits = {}
    for by in SPLIT_MODES:
        is_val = split_faces(data.label_names(), data.photos, by=by, val_fraction=cfg.val_fraction,
                             seed=cfg.seed)
        splits[by] = out / "splits" / f"{by}.csv"
        write_split_csv(splits[by], data.face_ids, is_val, by=by, seed=cfg.seed)
    results = {}
    for number, (colour, by) in enumerate(((c, b) for c in COLOURS for b in SPLIT_MODES), 1):
        name = f"{colour}-{by}"
        if progress:  # which of the four: `make demo` showed four runs of ten epochs, none numbered
            print(f"== run {number} of {len(COLOURS) * len(SPLIT_MODES)}: training seed-cnn on {colour} crops, "
                  f"split by {by}")
        run = train_run(out / "work" / colour, out / "runs" / name, train_cfg, split_csv=splits[by], progress=progress)
        results[name] = evaluate_run(run)
    summary = {
        "data": str(data_dir), "config": cfg.__dict__, "faces": works["colour"].faces,
        "per_class": works["colour"].per_class, "photos": works["colour"].photos,
        "skipped": len(works["colour"].problems), "seconds": round(time.perf_counter() - started, 1),
        "runs": {name: _headline(m) for name, m in results.items()},
    }
    write_text(out / "study.json", json.dumps(summary, indent=2))
    report = out / "report.html"
    write_text(report, render_report(summary))
    return report


def _headline(metrics: dict) -> dict:
    incorrect = metrics["per_class"]["mask_weared_incorrect"]
    return {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"],
            "recall": {c: metrics["per_class"][c]["recall"] for c in CLASSES},
            "incorrect_faces": incorrect["support"],
            "val_faces": sum(metrics["per_class"][c]["support"] for c in CLASSES),
            "val_photos": metrics["split"]["val_photos"]}


def _noise(a: dict, b: dict) -> float:
    """Twice the standard error of the difference of two runs' accuracies, in points: on the
    sample's 45 validation faces one face is 2.2 points, so a gap of a face or two said nothing of
    which run is better, yet was reported as a win or as the leak."""
    var = sum(r["accuracy"] * (1 - r["accuracy"]) / max(r["val_faces"], 1) for r in (a, b))
    return 200 * math.sqrt(var)


def findings(runs: dict) -> str:
    """One paragraph on what the four numbers say, worded from the numbers themselves: a gap is
    called a win only where it is larger than one split's noise (_noise)."""
    acc = {name: r["accuracy"] for name, r in runs.items()}
    photo, faces = runs["colour-photo"], runs["colour-photo"]["val_faces"]
    colour_gap = (acc["colour-photo"] - acc["grey-photo"]) * 100
    noise = _noise(photo, runs["grey-photo"])
    if abs(colour_gap) <= noise:
        colour_text = (f"colour and grey crops read {abs(colour_gap):.1f} points of validation accuracy "
                       f"apart, within the noise of one split of {faces} faces ({noise:.1f} points): "
                       f"neither is shown better")
    else:
        better, worse = ("colour", "grey") if colour_gap > 0 else ("grey", "colour")
        colour_text = (f"{better} crops beat {worse} ones by {abs(colour_gap):.1f} points of validation "
                       f"accuracy, more than one split's noise ({noise:.1f} points)")
    leak_gap = (acc["colour-face"] - acc["colour-photo"]) * 100
    noise = _noise(runs["colour-face"], photo)
    if leak_gap > noise:
        leak_text = (f"the study's per-face split reads {leak_gap:.1f} points higher than the "
                     f"per-photo split, more than one split's noise ({noise:.1f} points), because "
                     f"faces of the same photo land on both sides")
    elif leak_gap >= -noise:
        leak_text = (f"the study's per-face split reads {leak_gap:+.1f} points against the "
                     f"per-photo split, within the noise of one split ({noise:.1f} points): "
                     f"too few validation faces to show the leak here (`maskwatch cv` measures the spread)")
    else:
        leak_text = (f"the study's per-face split reads {-leak_gap:.1f} points lower than the "
                     f"per-photo split, more than one split's noise ({noise:.1f} points): the two "
                     f"hold out different faces, and these per-face ones were harder; one split "
                     f"cannot show the leak (`maskwatch cv` measures the spread)")
    inc = photo["recall"]["mask_weared_incorrect"]
    n = photo["incorrect_faces"]
    inc = ("not measured (no such faces among the validation faces)" if inc is None
           else f"{inc:.2f}, {round(inc * n)} of {n} faces")
    return (f"On the honest per-photo split, {colour_text}; {leak_text}. Accuracy hides the class "
            f"that matters: the colour model's recall on mask_weared_incorrect is {inc} "
            f"(macro-F1 {photo['macro_f1']:.3f}).")


def _code(text: str) -> str:
    """findings' `maskwatch cv`, written for a terminal, as code: the report showed the backticks."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", text)


def render_report(summary: dict) -> str:
    runs = summary["runs"]
    esc = html.escape
    rows = []
    for colour in COLOURS:
        cells = []
        for by in SPLIT_MODES:
            run = runs[f"{colour}-{by}"]
            inc, n = run["recall"]["mask_weared_incorrect"], run["incorrect_faces"]
            cells.append(f"<td>{run['accuracy']:.3f}</td><td>{run['macro_f1']:.3f}</td>"
                         + ("<td>-</td>" if inc is None else f"<td>{inc:.2f} ({round(inc * n)}/{n})</td>"))
        rows.append(f"<tr><th>{colour}</th>{''.join(cells)}</tr>")
    figures = []
    for name in runs:
        figures.append(
            f"<section><h3>{esc(name)}</h3>"
            f"<img src='runs/{esc(name)}/curves.png' alt='curves {esc(name)}' width='600'>"
            f"<img src='runs/{esc(name)}/confusion.png' alt='confusion {esc(name)}' width='330'>"
            f"<p>validation: {runs[name]['val_faces']} faces from {runs[name]['val_photos']} photos; "
            f"<a href='runs/{esc(name)}/metrics.json'>metrics.json</a></p></section>")
    per_class = ", ".join(f"{c} {n}" for c, n in summary["per_class"].items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>maskwatch study</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #999;padding:4px 10px;text-align:right}}</style></head><body>
<h1>The study: seed CNN, colour vs grey, split by photo vs by face</h1>
<p>Data: {esc(summary['data'])}: {summary['faces']} faces ({esc(per_class)}) in {summary['photos']}
photos; {summary['skipped']} inputs skipped. Crops {summary['config']['size']} px, margin
{summary['config']['margin']}, {summary['config']['epochs']} epochs, seed {summary['config']['seed']}.
Wall time {summary['seconds']:.0f} s. All numbers are on validation faces, held out: each run is
its last epoch's model, none chosen on them.</p>
<table><tr><th rowspan="2">crops</th><th colspan="3">split by photo (honest)</th>
<th colspan="3">split by face (the study's, leaks)</th></tr>
<tr><th>accuracy</th><th>macro-F1</th><th>recall incorrect</th>
<th>accuracy</th><th>macro-F1</th><th>recall incorrect</th></tr>
{''.join(rows)}</table>
<p><strong>What the numbers say.</strong> {_code(esc(findings(runs)))}</p>
{''.join(figures)}
</body></html>
"""
