"""caed-train: train a codec on random crops, within a time budget, resumable from checkpoints.

Inputs are quantized exactly as the daemon feeds the DPU; each architecture's
`training_loss` rounds its latents to the int8 grid the wire carries, so the int8 path costs
little (see the model modules for the loss each one uses).
A checkpoint (model, optimizer, step, RNG states) is written every few minutes and at the end;
running the same command again continues from it. When the architecture has grown since the
checkpoint (a new decoder stage), the trained weights are kept, the new layers start at their
initial values and the optimizer starts afresh. `--freeze` holds parameter groups fixed, e.g. the
encoder and rate model while a new decoder stage learns (the bitrate then cannot move).
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from caed.fixed_point import encoder_input_float, psnr_from_mse

from .architectures import ARCHITECTURES, build
from .base import CodecModel
from .data import CropSampler
from .quant import INPUT_FIX_POINT

CHECKPOINTS_DIR = Path(__file__).with_name("checkpoints")
DEFAULT_DATA = Path("/work/shared/data/train")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="caed-train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="kth2020", choices=sorted(ARCHITECTURES))
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of training images")
    p.add_argument("--minutes", type=float, required=True, help="wall-clock budget of this run")
    p.add_argument("--checkpoint-dir", type=Path, help="default: models/checkpoints/<model>")
    p.add_argument("--checkpoint-minutes", type=float, default=5.0)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (also applied on resume)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    p.add_argument("--ms-ssim-weight", type=float, default=0.0,
                   help="add this times (1 - MS-SSIM) to the distortion (models with an `ms_ssim_weight`, e.g. dct8)")
    p.add_argument("--freeze", nargs="+", default=[], metavar="GROUP",
                   help="parameter groups to hold fixed (models with optimizer groups, e.g. dct8: "
                        "analysis rate synthesis post)")
    args = p.parse_args(argv)
    if args.minutes <= 0 or args.batch <= 0 or args.lr <= 0 or args.checkpoint_minutes <= 0:
        p.error("--minutes, --batch, --lr and --checkpoint-minutes must be positive")
    if args.crop <= 0 or args.crop % 8:
        p.error("--crop must be a positive multiple of 8")
    return args


def read_checkpoint(path: Path, model_name: str, model: CodecModel) -> tuple[dict, list[str]]:
    """The checkpoint at `path`, its weights loaded into `model`, and the parameters it lacks:
    stages added to the architecture since, which keep their initial values."""
    ck = torch.load(path, weights_only=False)
    if ck["model_name"] != model_name:
        raise SystemExit(f"{path} holds model {ck['model_name']!r}, not {model_name!r}")
    missing, unexpected = model.load_state_dict(ck["model"], strict=False)
    if unexpected:
        raise SystemExit(f"{path} has parameters this {model_name} does not: {', '.join(unexpected)}")
    return ck, missing


def module_names(parameters: list[str]) -> str:
    """'decoder, refiner' for ['refiner.layers.1.weight', 'decoder.refiner.layers.1.weight', ...]."""
    return ", ".join(sorted({name.split(".")[0] for name in parameters}))


class Trainer:
    def __init__(self, args: argparse.Namespace):
        torch.manual_seed(args.seed)
        torch.set_num_threads(args.threads)
        self.args = args
        self.model = build(args.model)
        if args.ms_ssim_weight:
            if self.model.ms_ssim_weight is None:
                raise ValueError(f"model {args.model} has no MS-SSIM term")
            self.model.ms_ssim_weight = args.ms_ssim_weight
        groups = self.model.optimizer_groups(args.lr)
        unknown = set(args.freeze) - {g["name"] for g in groups}
        if unknown:
            raise ValueError(f"--freeze: model {args.model} has no parameter group {', '.join(sorted(unknown))} "
                             f"(groups: {', '.join(g['name'] for g in groups)})")
        for group in groups:
            group["lr_factor"] = 0.0 if group["name"] in args.freeze else group["lr"] / args.lr
            group["lr"] = args.lr * group["lr_factor"]
            if group["name"] in args.freeze:
                for param in group["params"]:
                    param.requires_grad_(False)  # also spares their share of the backward pass
        self.optimizer = torch.optim.Adam(groups, lr=args.lr)
        self.sampler = CropSampler(args.data, args.crop, args.seed)
        self.step = 0
        self.grown: list[str] = []  # parameters the resumed checkpoint did not have
        self.dir = args.checkpoint_dir or CHECKPOINTS_DIR / args.model
        self.path = self.dir / "checkpoint.pt"

    def resume(self) -> bool:
        if not self.path.exists():
            return False
        ck, missing = read_checkpoint(self.path, self.args.model, self.model)
        self.grown = missing
        factors = [group["lr_factor"] for group in self.optimizer.param_groups]
        if not missing:
            self.optimizer.load_state_dict(ck["optimizer"])
        for group, factor in zip(self.optimizer.param_groups, factors):
            group["lr"], group["lr_factor"] = self.args.lr * factor, factor
        self.step = ck["step"]
        self.sampler.restore(ck["sampler_rng"])
        torch.set_rng_state(ck["torch_rng"])
        return True

    def save(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        torch.save({
            "model_name": self.args.model, "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(), "step": self.step,
            "sampler_rng": self.sampler.state(), "torch_rng": torch.get_rng_state(),
        }, tmp)
        tmp.replace(self.path)

    def train_step(self) -> tuple[float, dict]:
        batch = encoder_input_float(self.sampler.batch(self.args.batch), INPUT_FIX_POINT)
        x = torch.from_numpy(batch).permute(0, 3, 1, 2)
        loss, info = self.model.training_loss(x)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.step += 1
        return loss.item(), info


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        trainer = Trainer(args)
    except (FileNotFoundError, ValueError) as e:
        print(f"caed-train: {e}", file=sys.stderr)
        return 2
    resumed = trainer.resume()
    log_path = trainer.dir / "log.csv"
    trainer.dir.mkdir(parents=True, exist_ok=True)
    new_log = not log_path.exists()
    t_end = time.monotonic() + args.minutes * 60
    t_save = time.monotonic() + args.checkpoint_minutes * 60
    fields = trainer.model.log_fields
    window: list[dict] = []
    with open(log_path, "a", newline="") as f, tqdm(desc=f"{args.model} step", initial=trainer.step,
                                                     unit="step", dynamic_ncols=True) as bar:
        log = csv.writer(f)
        if new_log:
            log.writerow(["step", "unix_time", "loss_mean_last_100", "psnr_db", *fields, "lr"])
        bar.write(f"{'resumed' if resumed else 'started'} {args.model} at step {trainer.step} "
                  f"(checkpoints in {trainer.dir})")
        if trainer.grown:
            bar.write(f"new since the checkpoint (initial values, optimizer restarted): {module_names(trainer.grown)}")
        if args.freeze:
            bar.write(f"frozen: {', '.join(args.freeze)}")
        while time.monotonic() < t_end:
            loss, info = trainer.train_step()
            window = (window + [{"loss": loss, **info}])[-100:]
            bar.update(1)
            mean = {k: float(np.mean([w[k] for w in window])) for k in ("loss", "mse", *fields)}
            if trainer.step % 20 == 0:
                bar.set_postfix(loss=f"{mean['loss']:.4g}", psnr=f"{psnr_from_mse(mean['mse'], peak=1.0):.2f}dB")
            if trainer.step % 100 == 0:
                log.writerow([trainer.step, int(time.time()), f"{mean['loss']:.6g}", f"{psnr_from_mse(mean['mse'], peak=1.0):.3f}",
                              *(f"{mean[k]:.5g}" for k in fields), args.lr])
                f.flush()
            if time.monotonic() >= t_save:
                trainer.save()
                t_save = time.monotonic() + args.checkpoint_minutes * 60
        trainer.save()
        bar.write(f"saved {trainer.path} at step {trainer.step}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
