"""`maskwatch train`: fit a classifier on a prepared work folder; save a self-describing run."""

from __future__ import annotations

import csv
import json
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from maskwatch.atomic import atomic_dir
from maskwatch.data.crops import CropSpec, fit_input
from maskwatch.data.split import read_split_csv
from maskwatch.faces import CLASSES
from maskwatch.models import build_model
from maskwatch.progress import progress_bar
from maskwatch.training.augment import augment_batch, degrade_resolution, mask_below_nose
from maskwatch.training.dataset import CropDataset, load_crop_dataset
from maskwatch.training.distill import distill_loss, resolve_teachers, teacher_probabilities

# "drw": deferred re-weighting (Cao et al., 2019): sqrt weights while features form, full
# inverse weights for the last third of the epochs, when the learning rate is low.
BALANCE_MODES = ("none", "sqrt", "inverse", "drw")
SCHEDULES = ("constant", "onecycle")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run; saved in the run's config.json."""

    model: str = "seed-cnn"
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 0
    augment: bool = False
    balance: str = "none"
    schedule: str = "constant"
    degrade: float = 0.0
    synthetic_incorrect: float = 0.0
    # Small faces at this input side (CropSpec.small_size); 0 = every face at the crop size.
    small_input: int = 0
    # Weight of an auxiliary "nose visible" output (bare and wrongly worn faces against masked
    # ones) trained beside the classes and dropped afterwards; 0 = off. See nose_visible_loss.
    nose_aux: float = 0.0
    # Focal loss exponent gamma (Lin et al., 2017): down-weights faces already classified
    # confidently, so the hard ones (most wrongly worn masks) weigh more; 0 = cross-entropy.
    focal: float = 0.0
    # Distillation (training/distill.py): weight of the teachers' term in the loss (0 = off), the
    # temperature both sides are softened at, and the teachers: run folders, or `maskwatch cv
    # --save-models` folders whose fold-K model teaches fold K.
    distill: float = 0.0
    distill_temperature: float = 2.0
    teachers: tuple[str, ...] = ()
    # Mixup (Zhang et al., 2018): each batch is blended with a shuffled copy of itself at a
    # weight drawn from Beta(mixup, mixup), and so are its labels; 0 = off.
    mixup: float = 0.0

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.balance not in BALANCE_MODES:
            raise ValueError(f"balance must be one of {BALANCE_MODES}, got {self.balance!r}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if self.small_input < 0:
            raise ValueError(f"small_input must be 0 (off) or a side in pixels, got {self.small_input}")
        if self.focal < 0:
            raise ValueError(f"focal must be 0 (cross-entropy) or a positive exponent, got {self.focal}")
        if self.nose_aux < 0:
            raise ValueError(f"nose_aux must be 0 (off) or a positive loss weight, got {self.nose_aux}")
        object.__setattr__(self, "teachers", tuple(str(t) for t in self.teachers))
        if bool(self.distill) != bool(self.teachers):
            raise ValueError("distillation needs both a weight (distill > 0) and teachers, or neither")
        if self.distill_temperature <= 0:
            raise ValueError(f"distill_temperature must be positive, got {self.distill_temperature}")
        if self.mixup < 0:
            raise ValueError(f"mixup must be 0 (off) or a positive Beta parameter, got {self.mixup}")
        if self.mixup and self.distill:
            raise ValueError("mixup and distillation together are not supported: a blended face has no "
                             "teacher probabilities")
        for name in ("degrade", "synthetic_incorrect", "distill"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a share between 0 and 1, got {getattr(self, name)}")


@dataclass
class TrainedModel:
    model: nn.Module
    history: list[dict]
    seconds: float


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """N x H x W x C uint8 -> N x C x H x W float32 pixels 0..255 (the models' input)."""
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).float()


def fit(data: CropDataset, train_idx: np.ndarray, val_idx: np.ndarray, cfg: TrainConfig,
        progress: bool = True, device: str = "cpu", teachers: Sequence[Path] = ()) -> TrainedModel:
    """Train cfg.model on data[train_idx], scoring data[val_idx] after every epoch.

    device: where the network trains ("cpu", "cuda", "cuda:1"); batches are drawn and augmented
    on the CPU either way, and the model comes back on the CPU.
    teachers: run folders whose models teach this one (with cfg.distill); none may have trained
    on a face of val_idx.
    """
    device = training_device(device)
    start = time.perf_counter()  # the teachers' probabilities count as training time
    teacher_probs = torch.from_numpy(teacher_probabilities(
        teachers, [data.face_ids[i] for i in train_idx], [data.face_ids[i] for i in val_idx],
        cfg.distill_temperature)) if cfg.distill else None
    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model = build_model(cfg.model, channels=data.spec.channels, size=data.spec.size,
                        classes=len(CLASSES) + (1 if cfg.nose_aux else 0))
    model.to(device)
    classes_of = ClassOutputs(model) if cfg.nose_aux else model
    spec = model_spec(data.spec, cfg)
    if spec.small_size:
        _check_small_input(model, spec, cfg.model)
    x_train, y_train = to_tensor(data.images[train_idx]), torch.from_numpy(data.labels[train_idx])
    y_val = torch.from_numpy(data.labels[val_idx])
    # With a small input, each batch holds faces of one input side (see epoch_batches).
    small = np.array([spec.input_size(s, s) < spec.size for s in data.long_sides[train_idx]]) \
        if spec.small_size else None
    if small is not None and min(small.sum(), (~small).sum()) == 1:
        small[:] = small.sum() > 1  # a lone face of its side trains with the others (BatchNorm)
    counts = np.maximum(np.bincount(data.labels[train_idx], minlength=len(CLASSES)), 1).astype(np.float64)
    loss_fn = ClassLoss(class_weights(counts, "sqrt" if cfg.balance == "drw" else cfg.balance), cfg.focal).to(device)
    late_loss_fn = ClassLoss(class_weights(counts, "inverse"), cfg.focal).to(device) \
        if cfg.balance == "drw" else loss_fn
    late_epoch = cfg.epochs - cfg.epochs // 3 + 1
    masked_pool = train_idx[data.labels[train_idx] == CLASSES.index("with_mask")]
    bare_pool = train_idx[data.labels[train_idx] == CLASSES.index("without_mask")]
    n_synthetic = int(round(cfg.synthetic_incorrect * cfg.batch_size)) if len(masked_pool) and len(bare_pool) else 0
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    # How many batches an epoch has does not depend on the shuffle (a throwaway generator).
    steps = cfg.epochs * len(epoch_batches(np.random.default_rng(), len(train_idx), cfg.batch_size, small))
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=steps) \
        if cfg.schedule == "onecycle" else None
    history = []
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        batches = epoch_batches(rng, len(train_idx), cfg.batch_size, small)
        total_loss, correct = 0.0, 0
        bar = progress_bar(batches, desc=f"epoch {epoch}/{cfg.epochs}", unit="batch", disable=not progress,
                   leave=False)
        for rows in bar:
            idx = torch.from_numpy(rows)
            xb, yb = x_train[idx], y_train[idx]
            if n_synthetic:
                xs = mask_below_nose(to_tensor(data.images[rng.choice(masked_pool, n_synthetic)]),
                                     to_tensor(data.images[rng.choice(bare_pool, n_synthetic)]), generator)
                xb = torch.cat([xb, xs])
                yb = torch.cat([yb, torch.full((n_synthetic,), CLASSES.index("mask_weared_incorrect"))])
            if cfg.augment:
                xb = augment_batch(xb, generator)
            if cfg.degrade:
                xb = degrade_resolution(xb, generator, cfg.degrade)
            if small is not None and small[rows[0]]:
                # Shrunk as serving shrinks small faces (cv2's area averaging, within a grey level).
                xb = F.interpolate(xb, size=(spec.small_size,) * 2, mode="bilinear", antialias=True,
                                   align_corners=False)
            if cfg.mixup:
                xb, weight, partner = mix_batch(xb, cfg.mixup, rng, generator)
            xb, yb = xb.to(device), yb.to(device)
            if cfg.mixup:
                partner = partner.to(device)
            outputs = model(xb)
            logits = outputs[:, :len(CLASSES)]
            class_loss = late_loss_fn if epoch >= late_epoch else loss_fn
            loss = class_loss(logits, yb) if not cfg.mixup else \
                blended_loss(lambda y: class_loss(logits, y), yb, weight, partner)
            if teacher_probs is not None:  # synthetic faces have no teacher: the batch's own rows only
                loss = (1 - cfg.distill) * loss + cfg.distill * distill_loss(
                    logits[:len(idx)], teacher_probs[idx].to(device), cfg.distill_temperature)
            if cfg.nose_aux:
                nose = nose_visible_loss(outputs[:, len(CLASSES)], yb) if not cfg.mixup else \
                    blended_loss(lambda y: nose_visible_loss(outputs[:, len(CLASSES)], y), yb, weight, partner)
                loss = loss + cfg.nose_aux * nose
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            total_loss += loss.item() * len(idx)
            correct += (logits[:len(idx)].argmax(1) == yb[:len(idx)]).sum().item()
        val_logits = predict_crops(classes_of, data.images[val_idx], data.long_sides[val_idx], spec)
        val_loss = nn.functional.cross_entropy(torch.from_numpy(val_logits), y_val).item()
        row = {
            "epoch": epoch,
            "train_loss": total_loss / len(train_idx),
            "train_accuracy": correct / len(train_idx),
            "val_loss": val_loss,
            "val_accuracy": float((val_logits.argmax(1) == y_val.numpy()).mean()),
        }
        history.append(row)
        if progress:
            tqdm.write(f"epoch {epoch}/{cfg.epochs}: loss {row['train_loss']:.4f} "
                       f"acc {row['train_accuracy']:.4f} | val loss {row['val_loss']:.4f} "
                       f"val acc {row['val_accuracy']:.4f}")
    if cfg.nose_aux:
        drop_extra_outputs(model, len(CLASSES))
    model.cpu()
    return TrainedModel(model=model, history=history, seconds=time.perf_counter() - start)


def mix_batch(x: torch.Tensor, alpha: float, rng: np.random.Generator,
              generator: torch.Generator) -> tuple[torch.Tensor, float, torch.Tensor]:
    """Mixup: the batch blended with a shuffled copy of itself at a weight drawn from
    Beta(alpha, alpha). Returns the blend, the weight and each row's partner."""
    weight = float(rng.beta(alpha, alpha))
    partner = torch.randperm(len(x), generator=generator)
    return weight * x + (1 - weight) * x[partner], weight, partner


def blended_loss(loss_of, labels: torch.Tensor, weight: float, partner: torch.Tensor) -> torch.Tensor:
    """A mixed batch's loss: the same blend of the losses against each row's two labels."""
    return weight * loss_of(labels) + (1 - weight) * loss_of(labels[partner])


class ClassLoss(nn.Module):
    """Cross-entropy with class weights; with gamma > 0, the focal loss: each face's term is
    scaled by (1 - p_true) ** gamma. Weighted mean, as nn.CrossEntropyLoss takes it."""

    def __init__(self, weight: torch.Tensor | None, gamma: float = 0.0) -> None:
        super().__init__()
        self.register_buffer("weight", weight)  # moves with .to(device)
        self.gamma = gamma

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if not self.gamma:
            return F.cross_entropy(logits, labels, weight=self.weight)
        log_p = F.log_softmax(logits, dim=1).gather(1, labels[:, None])[:, 0]
        w = self.weight[labels] if self.weight is not None else torch.ones_like(log_p)
        return -(w * (1 - log_p.exp()) ** self.gamma * log_p).sum() / w.sum()


def nose_visible_loss(nose_logit: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of "the nose shows": true for bare faces and wrongly worn masks.

    A visible nose above a mask is what tells the rare class from a mask worn right; this output
    learns it from every bare face too (about 840 faces in the dataset instead of 123).
    """
    shows = (labels != CLASSES.index("with_mask")).float()
    return F.binary_cross_entropy_with_logits(nose_logit, shows)


class ClassOutputs(nn.Module):
    """A view of a network with extra outputs that gives the class logits only (for scoring)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)[:, :len(CLASSES)]


def drop_extra_outputs(model: nn.Module, classes: int) -> None:
    """Cut the last linear layer to its first `classes` outputs, in place, so the trained model
    saves, exports and serves exactly like one trained without the auxiliary output."""
    last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    last.weight = nn.Parameter(last.weight.detach()[:classes].clone())
    if last.bias is not None:
        last.bias = nn.Parameter(last.bias.detach()[:classes].clone())
    last.out_features = classes


def training_device(name: str) -> torch.device:
    """A torch device by name, refused by name when this machine cannot train on it."""
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"unknown device {name!r} ({err}); use 'cpu' or 'cuda'") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r}: PyTorch sees no CUDA GPU on this machine; use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device {name!r}: only 'cpu' and 'cuda' are supported")
    return device


def class_weights(counts: np.ndarray, balance: str) -> torch.Tensor | None:
    """Loss weights per class, mean 1: "sqrt" lifts the rare class without drowning the
    common one; "inverse" fully equalises; "none" gives None (plain cross-entropy)."""
    if balance == "none":
        return None
    w = 1.0 / (np.sqrt(counts) if balance == "sqrt" else counts)
    return torch.tensor(w / w.mean(), dtype=torch.float32)


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int = 256, flip: bool = False) -> np.ndarray:
    """Logits of every crop; with flip, the mean of the crop's and its mirror image's logits."""
    model.eval()
    if len(x) == 0:
        return np.zeros((0, len(CLASSES)), dtype=np.float32)
    device = next(model.parameters()).device
    batches = [x[i:i + batch_size].to(device) for i in range(0, len(x), batch_size)]
    if flip:
        return torch.cat([((model(b) + model(b.flip(-1))) / 2).cpu() for b in batches]).numpy()
    return torch.cat([model(b).cpu() for b in batches]).numpy()


def epoch_batches(rng: np.random.Generator, n: int, batch_size: int,
                  small: np.ndarray | None = None) -> list[np.ndarray]:
    """One epoch's batches of row numbers 0..n-1, shuffled.

    With `small` (one flag per row), a batch holds small faces only or large ones only, so every
    forward pass is a full batch at one input side (splitting each batch into two passes by side
    leaves BatchNorm a handful of large faces per pass).
    """
    if small is None:
        order = rng.permutation(n)
        return [order[i:i + batch_size] for i in range(0, n, batch_size)]
    batches = []
    for group in (np.flatnonzero(small), np.flatnonzero(~small)):
        order = group[rng.permutation(len(group))]
        chunks = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
        if len(chunks) > 1 and len(chunks[-1]) == 1:  # BatchNorm cannot train on one crop
            chunks[-2:] = [np.concatenate(chunks[-2:])]
        batches += chunks
    return [batches[i] for i in rng.permutation(len(batches))]


def predict_crops(model: nn.Module, images: np.ndarray, long_sides: np.ndarray, spec: CropSpec,
                  flip: bool = False) -> np.ndarray:
    """Logits of prepared crops (N x S x S x C uint8), each fed at the side the classifier
    gives its face (spec.input_size), shrunk the way serving shrinks it."""
    logits = np.zeros((len(images), len(CLASSES)), dtype=np.float32)
    sides = np.array([spec.input_size(s, s) for s in long_sides], dtype=int)
    for side in np.unique(sides):
        rows = np.flatnonzero(sides == side)
        x = np.stack([fit_input(images[i], int(side)) for i in rows])
        logits[rows] = predict_logits(model, to_tensor(x), flip=flip)
    return logits


def _check_small_input(model: nn.Module, spec: CropSpec, name: str) -> None:
    """Fail before training if the network cannot take the small input (a fixed-size head)."""
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, spec.channels, spec.small_size, spec.small_size,
                              device=next(model.parameters()).device))
    except RuntimeError as err:
        raise ValueError(f"{name} cannot take {spec.small_size} px inputs beside {spec.size} px "
                         f"({err}); use --small-input 0 or a larger side") from None
    model.train()


def model_spec(data_spec: CropSpec, cfg: TrainConfig) -> CropSpec:
    """The crop spec a model trained with cfg on data_spec crops is served with."""
    return replace(data_spec, small_size=cfg.small_input)


def train_run(work: Path, out: Path, cfg: TrainConfig, split_csv: Path | None = None,
              progress: bool = True, device: str = "cpu") -> Path:
    """Train on a work folder's split and write the run folder `out` (atomically).

    The run holds model.safetensors, config.json (architecture, crop spec, classes, training
    settings, where its data and split came from), history.csv, curves.png and split.csv.
    """
    work = Path(work)
    split_csv = Path(split_csv) if split_csv else work / "split.csv"
    data = load_crop_dataset(work)
    assignment, by, split_seed = read_split_csv(split_csv)
    missing = [f for f in data.face_ids if f not in assignment]
    if missing:
        raise ValueError(f"{split_csv}: {len(missing)} faces of {work} are not in the split "
                         f"(first: {missing[0]}); make the split again")
    is_val = np.array([assignment[f] == "val" for f in data.face_ids])
    train_idx, val_idx = np.flatnonzero(~is_val), np.flatnonzero(is_val)
    trained = fit(data, train_idx, val_idx, cfg, progress=progress, device=device,
                  teachers=resolve_teachers(cfg.teachers, fold=None))
    config = run_config(cfg, model_spec(data.spec, cfg), work=work, split={"by": by, "seed": split_seed,
                                                          "train": len(train_idx), "val": len(val_idx)})
    write_run(out, trained, config, data, lambda path: shutil.copyfile(split_csv, path))
    return Path(out)


def write_run(out: Path, trained: TrainedModel, config: dict, data: CropDataset, write_split) -> None:
    """A run folder, atomically: weights, config.json, history.csv, curves.png, split.csv."""
    from maskwatch.training.plots import plot_curves

    config = config | {"train_seconds": round(trained.seconds, 1)}
    with atomic_dir(out) as tmp:
        save_model(tmp, trained.model, config)
        write_history(tmp / "history.csv", trained.history)
        write_split(tmp / "split.csv")
        plot_curves(trained.history, tmp / "curves.png", title=f"{config['model']} ({_spec_name(data.spec)})")


def run_config(cfg: TrainConfig, spec: CropSpec, **extra) -> dict:
    return {"model": cfg.model, "classes": list(CLASSES), "crop": spec.to_dict(),
            "input": "N x C x H x W float32 pixels 0..255, BGR (or grey)",
            "train": asdict(cfg), **{k: str(v) if isinstance(v, Path) else v for k, v in extra.items()}}


def save_model(folder: Path, model: nn.Module, config: dict) -> None:
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(config, indent=2))


def load_model(run: Path) -> tuple[nn.Module, dict]:
    """The trained model of a run folder (eval mode) and its config."""
    from safetensors.torch import load_file

    run = Path(run)
    config_path = run / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{run}: not a run folder (no config.json); run `maskwatch train`")
    config = json.loads(config_path.read_text())
    spec = CropSpec(**config["crop"])
    model = build_model(config["model"], channels=spec.channels, size=spec.size,
                        classes=len(config["classes"]), pretrained=False)
    model.load_state_dict(load_file(str(run / "model.safetensors")))
    model.eval()
    return model, config


def write_history(path: Path, history: list[dict]) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)


def _spec_name(spec: CropSpec) -> str:
    return f"{'grey' if spec.grey else 'colour'} {spec.size}px"
