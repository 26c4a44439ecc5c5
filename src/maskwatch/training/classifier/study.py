"""`maskwatch study`: the original study in one command, reproduced honestly.

Colour and grey crops, split by photo (honest) and by face (the study's leaky split), the seed
CNN trained on each, all four evaluated, and one report comparing them.
"""

from __future__ import annotations

import html
import json
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
    works = {}
    for colour in COLOURS:
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
    for colour in COLOURS:
        for by in SPLIT_MODES:
            name = f"{colour}-{by}"
            if progress:
                print(f"== training seed-cnn on {colour} crops, split by {by}")
            run = train_run(out / "work" / colour, out / "runs" / name,
                            TrainConfig(model="seed-cnn", epochs=cfg.epochs, seed=cfg.seed),
                            split_csv=splits[by], progress=progress)
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
    return {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"],
            "recall": {c: metrics["per_class"][c]["recall"] for c in CLASSES},
            "val_faces": sum(metrics["per_class"][c]["support"] for c in CLASSES),
            "val_photos": metrics["split"]["val_photos"]}


def findings(runs: dict) -> str:
    """One paragraph on what the four numbers say, worded from the numbers themselves."""
    acc = {name: r["accuracy"] for name, r in runs.items()}
    colour_gap = (acc["colour-photo"] - acc["grey-photo"]) * 100
    leak_gap = (acc["colour-face"] - acc["colour-photo"]) * 100
    colour_text = (f"colour crops beat grey ones by {colour_gap:.1f} points of validation accuracy"
                   if colour_gap > 0 else
                   f"grey crops matched or beat colour ones (by {-colour_gap:.1f} points)")
    if leak_gap >= 1:
        leak_text = (f"the study's per-face split reads {leak_gap:.1f} points higher than the "
                     f"per-photo split, because faces of the same photo land on both sides")
    else:
        faces = runs["colour-photo"]["val_faces"]
        leak_text = (f"the study's per-face split reads {leak_gap:+.1f} points against the "
                     f"per-photo split: one split of {faces} validation faces is too noisy to "
                     f"show the leak here (`maskwatch cv` measures the spread)")
    inc = runs["colour-photo"]["recall"]["mask_weared_incorrect"]
    inc = "not measured (no such faces among the validation faces)" if inc is None else f"{inc:.2f}"
    return (f"On the honest per-photo split, {colour_text}; {leak_text}. Accuracy hides the class "
            f"that matters: the colour model's recall on mask_weared_incorrect is {inc} "
            f"(macro-F1 {runs['colour-photo']['macro_f1']:.3f}).")


def render_report(summary: dict) -> str:
    runs = summary["runs"]
    esc = html.escape
    rows = []
    for colour in COLOURS:
        cells = []
        for by in SPLIT_MODES:
            r = runs[f"{colour}-{by}"]
            cells.append(f"<td>{r['accuracy']:.3f}</td><td>{r['macro_f1']:.3f}</td>"
                         + ("<td>-</td>" if r["recall"]["mask_weared_incorrect"] is None
                            else f"<td>{r['recall']['mask_weared_incorrect']:.2f}</td>"))
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
Wall time {summary['seconds']:.0f} s. All numbers are on validation faces.</p>
<table><tr><th rowspan="2">crops</th><th colspan="3">split by photo (honest)</th>
<th colspan="3">split by face (the study's, leaks)</th></tr>
<tr><th>accuracy</th><th>macro-F1</th><th>recall incorrect</th>
<th>accuracy</th><th>macro-F1</th><th>recall incorrect</th></tr>
{''.join(rows)}</table>
<p><strong>What the numbers say.</strong> {esc(findings(runs))}</p>
{''.join(figures)}
</body></html>
"""
