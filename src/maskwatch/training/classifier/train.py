"""`maskwatch train`: fit a classifier on a prepared work folder; save a self-describing run."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from maskwatch.atomic import atomic_dir, atomic_path, check_replaceable
from maskwatch.data.crops import CropSpec
from maskwatch.data.split import read_split_csv
from maskwatch.faces import CLASSES
from maskwatch.models import build_model
from maskwatch.progress import progress_bar
from maskwatch.training.classifier.augment import augment_batch, night_batch
from maskwatch.training.classifier.dataset import CropDataset, grey_copy, load_crop_dataset
from maskwatch.training.classifier.initial import freeze_norms, init_digest, load_initial_weights

BALANCE_MODES = ("none", "sqrt", "inverse")
SCHEDULES = ("constant", "onecycle")

# The file only a classifier run holds: a folder with it is one this command may replace (a
# detector run holds a config.json too, and its checkpoints must not go).
RUN_MARK = "model.safetensors"


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run; saved in the run's config.json. The knobs a user
    retraining on their own data tunes; ideas tried and dropped are in docs/experiments.md."""

    model: str = "seed-cnn"
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 0
    augment: bool = False
    balance: str = "none"
    schedule: str = "constant"
    # Renders of bare training faces with masks worn right and wrongly (masks.py,
    # `maskwatch render WORK`), as a share of each batch; 0 = none.
    rendered: float = 0.0
    # A trained classifier to start from (initial.py: an exported .onnx file or a run folder),
    # instead of ImageNet's weights or none; its normalisation statistics are kept while training.
    init: str | None = None
    # A night model (Classifier, night): grey crops, with low-light and glare copies (night_batch).
    night: bool = False

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.balance not in BALANCE_MODES:
            raise ValueError(f"balance must be one of {BALANCE_MODES}, got {self.balance!r}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if not self.lr > 0 or self.weight_decay < 0:
            raise ValueError(f"lr must be more than 0 and weight_decay 0 or more, got {self.lr} and {self.weight_decay}")
        if not 0.0 <= self.rendered <= 1.0:
            raise ValueError(f"rendered must be a share between 0 and 1, got {self.rendered}")


@dataclass
class TrainedModel:
    model: nn.Module
    history: list[dict]
    seconds: float


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """N x H x W x C uint8 -> N x C x H x W float32 pixels 0..255 (the models' input)."""
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).float()


def fit(data: CropDataset, train_idx: np.ndarray, val_idx: np.ndarray, cfg: TrainConfig,
        progress: bool = True, device: str = "cpu", checkpoint: Path | None = None) -> TrainedModel:
    """Train cfg.model on data[train_idx], scoring data[val_idx] after every epoch.

    device: where the network trains ("cpu", "cuda", "cuda:1"); batches are drawn and augmented
    on the CPU either way, and the model comes back on the CPU.
    checkpoint: a file written after every epoch (weights, optimizer, schedule, every random
    state, history) and resumed from when it is there and of these faces and settings, so that a
    run stopped part-way goes on to the very weights an unbroken run gives.
    """
    device = training_device(device)
    start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model = build_model(cfg.model, channels=data.spec.channels, size=data.spec.size, classes=len(CLASSES),
                        pretrained=cfg.init is None)
    if cfg.init is not None:
        load_initial_weights(model, Path(cfg.init), cfg.model, data.spec)
    model.to(device)
    x_train, y_train = to_tensor(data.images[train_idx]), torch.from_numpy(data.labels[train_idx])
    y_val = torch.from_numpy(data.labels[val_idx])
    counts = np.maximum(np.bincount(data.labels[train_idx], minlength=len(CLASSES)), 1).astype(np.float64)
    weights = class_weights(counts, cfg.balance)
    loss_fn = nn.CrossEntropyLoss(weight=weights.to(device) if weights is not None else None)
    rendered_images, rendered_labels, n_rendered = _rendered_pool(data, train_idx, cfg)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * -(-len(train_idx) // cfg.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=steps) \
        if cfg.schedule == "onecycle" else None
    history: list[dict] = []
    key = _checkpoint_key(data, train_idx, val_idx, cfg)
    state = _load_checkpoint(checkpoint, key) if checkpoint is not None else None
    if state is not None:
        try:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            if scheduler is not None:
                scheduler.load_state_dict(state["scheduler"])
            rng.bit_generator.state = json.loads(state["numpy_rng"])
            generator.set_state(state["generator"])
            torch.set_rng_state(state["torch_rng"])
            if device.type == "cuda" and state["cuda_rng"]:  # dropout draws there on a GPU
                torch.cuda.set_rng_state_all(state["cuda_rng"])
            history = json.loads(state["history"])
            start -= float(state["seconds"])
        except (RuntimeError, ValueError, KeyError, TypeError) as err:  # not this network's after all
            tqdm.write(f"{checkpoint}: cannot resume from it ({type(err).__name__}); starting afresh")
            checkpoint.unlink(missing_ok=True)
            return fit(data, train_idx, val_idx, cfg, progress, str(device), checkpoint)
        if progress:
            tqdm.write(f"resuming after epoch {len(history)}/{cfg.epochs} from {checkpoint}")
    for epoch in range(len(history) + 1, cfg.epochs + 1):
        model.train()
        if cfg.init is not None:
            freeze_norms(model)
        order = rng.permutation(len(train_idx))
        batches = [order[i:i + cfg.batch_size] for i in range(0, len(order), cfg.batch_size)]
        total_loss, correct = 0.0, 0
        bar = progress_bar(batches, desc=f"epoch {epoch}/{cfg.epochs}", unit="batch", disable=not progress,
                           leave=False)
        for rows in bar:
            idx = torch.from_numpy(rows)
            xb, yb = x_train[idx], y_train[idx]
            if n_rendered:
                pick = rng.integers(len(rendered_labels), size=n_rendered)
                xb = torch.cat([xb, to_tensor(rendered_images[pick])])
                yb = torch.cat([yb, torch.from_numpy(rendered_labels[pick])])
            if cfg.augment:
                xb = augment_batch(xb, generator)
            if cfg.night:
                xb = night_batch(xb, generator)
            xb, yb = xb.to(device), yb.to(device)
            logits = model(xb)
            loss = loss_fn(logits, yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            total_loss += loss.item() * len(idx)
            correct += (logits[:len(idx)].argmax(1) == yb[:len(idx)]).sum().item()
        val_logits = predict_logits(model, to_tensor(data.images[val_idx]))
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
        if checkpoint is not None:  # the last epoch too: a run folder that cannot be written (a full disk) keeps it
            state = {"key": key, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     "scheduler": scheduler.state_dict() if scheduler is not None else {},
                     "numpy_rng": json.dumps(rng.bit_generator.state), "generator": generator.get_state(),
                     "torch_rng": torch.get_rng_state(), "history": json.dumps(history),
                     "cuda_rng": torch.cuda.get_rng_state_all() if device.type == "cuda" else [],
                     "seconds": time.perf_counter() - start}
            with atomic_path(checkpoint, suffix=".pt", durable=True) as tmp:
                torch.save(state, tmp)
    model.cpu()
    return TrainedModel(model=model, history=history, seconds=time.perf_counter() - start)


def _checkpoint_key(data: CropDataset, train_idx: np.ndarray, val_idx: np.ndarray, cfg: TrainConfig) -> str:
    """What a checkpoint must have been trained on to be resumed: these settings, faces and split."""
    faces = hashlib.sha256("\n".join(map(str, data.face_ids)).encode())
    faces.update(train_idx.tobytes() + b"|" + val_idx.tobytes() + data.labels.tobytes())
    key = {"train": asdict(cfg), "work": str(Path(data.work).resolve()), "crop": data.spec.to_dict(),
           "faces": faces.hexdigest()}
    if cfg.init is not None:  # a file exported again under the same name is another start
        key["init"] = init_digest(Path(cfg.init))
    return json.dumps(key)


def _load_checkpoint(path: Path, key: str) -> dict | None:
    """The checkpoint at `path` if it is of `key`'s run; None (with a line saying why) otherwise."""
    if not path.is_file():
        return None
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as err:  # noqa: BLE001 - a cut-short or foreign file: start afresh, said
        tqdm.write(f"{path}: not a checkpoint this can resume ({type(err).__name__}); starting afresh")
        return None
    if state.get("key") != key:
        tqdm.write(f"{path}: a checkpoint of other settings or faces; starting afresh")
        return None
    return state


def checkpoint_path(out: Path) -> Path:
    """Where `train` keeps the run's last epoch until the run folder is written: beside it."""
    out = Path(out)
    return out.parent / f".{out.name}.checkpoint.pt"


def _rendered_pool(data: CropDataset, train_idx: np.ndarray, cfg: TrainConfig):
    """The renders made from this run's training faces only, and how many join each batch."""
    if not cfg.rendered:
        return None, None, 0
    from maskwatch.training.classifier.masks import RenderedFaces

    renders = RenderedFaces.load(Path(data.work) / "rendered.npz")
    if renders.images.shape[1:] != data.images.shape[1:]:
        raise ValueError(f"{data.work}/rendered.npz holds {renders.images.shape[1]} px renders, the crops are "
                         f"{data.images.shape[1]} px; run `maskwatch render` again")
    rows = renders.of_sources(data.face_ids[i] for i in train_idx)
    if len(rows) == 0:
        raise ValueError(f"{data.work}/rendered.npz has no render of this run's training faces")
    return renders.images[rows], renders.labels[rows], int(round(cfg.rendered * cfg.batch_size))


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


def predict_crops(model: nn.Module, images: np.ndarray, flip: bool = False) -> np.ndarray:
    """Logits of prepared crops (N x S x S x C uint8), as serving feeds them."""
    return predict_logits(model, to_tensor(images), flip=flip)


def train_run(work: Path, out: Path, cfg: TrainConfig, split_csv: Path | None = None,
              progress: bool = True, device: str = "cpu") -> Path:
    """Train on a work folder's split and write the run folder `out` (atomically).

    The run holds model.safetensors, config.json (architecture, crop spec, classes, training
    settings, where its data and split came from), history.csv, curves.png and split.csv. Until
    then the last epoch is kept beside it (checkpoint_path), and the same call resumes from it.
    """
    work = Path(work)
    check_replaceable(out, RUN_MARK)  # before the training, not after it
    split_csv = Path(split_csv) if split_csv else work / "split.csv"
    data = load_crop_dataset(work)
    if cfg.night:
        data = grey_copy(data)
    assignment, by, split_seed = read_split_csv(split_csv)
    missing = [f for f in data.face_ids if f not in assignment]
    if missing:
        raise ValueError(f"{split_csv}: {len(missing)} faces of {work} are not in the split "
                         f"(first: {missing[0]}); make the split again")
    is_val = np.array([assignment[f] == "val" for f in data.face_ids])
    train_idx, val_idx = np.flatnonzero(~is_val), np.flatnonzero(is_val)
    if not len(train_idx) or not len(val_idx):
        raise ValueError(f"{split_csv}: {len(train_idx)} training and {len(val_idx)} validation faces; "
                         "both sides need faces")
    for side, idx in (("training", train_idx), ("validation", val_idx)):
        if absent := [c for i, c in enumerate(CLASSES) if not (data.labels[idx] == i).any()]:
            # A class only in one photo can land wholly on the validation side; said, not found later.
            print(f"warning: no {side} faces of {', '.join(absent)}"
                  + (": the model cannot learn it" if side == "training" else ": its recall is not measured"),
                  file=sys.stderr)
    checkpoint = checkpoint_path(out)
    trained = fit(data, train_idx, val_idx, cfg, progress=progress, device=device, checkpoint=checkpoint)
    # A split file of one's own may not say how it was made: then neither is stored (a seed of None
    # read as a seed made evaluate-detection split at random).
    split = {"by": by, "seed": split_seed, "train": len(train_idx), "val": len(val_idx)}
    config = run_config(cfg, data.spec, work=work, split={k: v for k, v in split.items() if v is not None})
    write_run(out, trained, config, data, lambda path: shutil.copyfile(split_csv, path))
    checkpoint.unlink(missing_ok=True)
    return Path(out)


def write_run(out: Path, trained: TrainedModel, config: dict, data: CropDataset, write_split) -> None:
    """A run folder, atomically: weights, config.json, history.csv, curves.png, split.csv."""
    from maskwatch.training.classifier.plots import plot_curves

    config = config | {"train_seconds": round(trained.seconds, 1)}
    with atomic_dir(out, own=RUN_MARK) as tmp:
        save_model(tmp, trained.model, config)
        write_history(tmp / "history.csv", trained.history)
        write_split(tmp / "split.csv")
        plot_curves(trained.history, tmp / "curves.png", title=f"{config['model']} ({_spec_name(data.spec)})")


def run_config(cfg: TrainConfig, spec: CropSpec, **extra) -> dict:
    return {"model": cfg.model, "classes": list(CLASSES), "crop": spec.to_dict(),
            "input": "N x C x H x W float32 pixels 0..255, BGR (or grey)",
            "train": asdict(cfg), **{k: str(v.resolve()) if isinstance(v, Path) else v for k, v in extra.items()}}


def save_model(folder: Path, model: nn.Module, config: dict) -> None:
    from safetensors.torch import save_file

    try:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    except Exception as err:  # safetensors' own SafetensorError on a full disk: said as the OSError it is
        if type(err).__name__ != "SafetensorError":
            raise
        raise OSError(f"{folder / 'model.safetensors'}: cannot write: {err}") from None
    (folder / "config.json").write_text(json.dumps(config, indent=2))


def load_model(run: Path) -> tuple[nn.Module, dict]:
    """The trained model of a run folder (eval mode) and its config."""
    from safetensors.torch import load_file

    run = Path(run)
    config_path = run / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{run}: not a run folder (no config.json); run `maskwatch train`")
    try:
        config = json.loads(config_path.read_text())
        spec = CropSpec(**config["crop"])
        model = build_model(config["model"], channels=spec.channels, size=spec.size,
                            classes=len(config["classes"]), pretrained=False)
    except (ValueError, KeyError, TypeError) as err:  # edited, truncated, not text, or from another tool
        detail = f"no {err}" if isinstance(err, KeyError) else str(err)[:120]
        raise ValueError(f"{config_path}: not a run's config ({detail}); run `maskwatch train` again") from None
    if not (run / "model.safetensors").is_file():
        raise FileNotFoundError(f"{run}: no model.safetensors; the run did not finish")
    try:
        model.load_state_dict(load_file(str(run / "model.safetensors")))
    except Exception as err:  # noqa: BLE001  safetensors' own error (truncated), or weights of another model
        raise ValueError(f"{run / 'model.safetensors'}: not this run's weights ({type(err).__name__}: "
                         f"{str(err).splitlines()[0][:120]}); train the run again") from None
    model.eval()
    return model, config


def write_history(path: Path, history: list[dict]) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)


def _spec_name(spec: CropSpec) -> str:
    return f"{'grey' if spec.grey else 'colour'} {spec.size}px"
