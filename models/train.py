"""caed-train: train a codec on random crops, within a time budget, resumable from checkpoints.

The loss is MSE on images quantized exactly as the daemon feeds the DPU, with the latents
rounded (straight-through) to the int8 grid the wire carries, so the int8 path costs little.
The latent fix_point follows the batch's largest latent (power of two, as calibration will pick).
A checkpoint (model, optimizer, step, RNG states) is written every few minutes and at the end;
running the same command again continues from it.
"""
from __future__ import annotations

import argparse
import csv
import math
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .architectures import ARCHITECTURES, build
from .data import CropSampler
from .quant import fake_quantize, fix_point_for, quantize_input

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
    args = p.parse_args(argv)
    if args.minutes <= 0 or args.batch <= 0 or args.lr <= 0 or args.checkpoint_minutes <= 0:
        p.error("--minutes, --batch, --lr and --checkpoint-minutes must be positive")
    if args.crop <= 0 or args.crop % 8:
        p.error("--crop must be a positive multiple of 8")
    return args


class Trainer:
    def __init__(self, args: argparse.Namespace):
        torch.manual_seed(args.seed)
        torch.set_num_threads(args.threads)
        self.args = args
        self.model = build(args.model)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=args.lr)
        self.sampler = CropSampler(args.data, args.crop, args.seed)
        self.step = 0
        self.dir = args.checkpoint_dir or CHECKPOINTS_DIR / args.model
        self.path = self.dir / "checkpoint.pt"

    def resume(self) -> bool:
        if not self.path.exists():
            return False
        ck = torch.load(self.path, weights_only=False)
        if ck["model_name"] != self.args.model:
            raise SystemExit(f"{self.path} holds model {ck['model_name']!r}, not {self.args.model!r}")
        self.model.load_state_dict(ck["model"])
        self.optimizer.load_state_dict(ck["optimizer"])
        for group in self.optimizer.param_groups:
            group["lr"] = self.args.lr
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

    def train_step(self) -> tuple[float, int]:
        x = quantize_input(torch.from_numpy(self.sampler.batch(self.args.batch)).permute(0, 3, 1, 2))
        y = self.model.encode(x)
        fix_point = fix_point_for(float(y.detach().abs().max()))
        x_hat = self.model.decode(fake_quantize(y, fix_point))
        loss = torch.mean((x_hat - x) ** 2)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.step += 1
        return loss.item(), fix_point


def psnr(mse: float) -> float:
    return 10 * math.log10(1.0 / max(mse, 1e-12))


def main(argv=None) -> int:
    args = parse_args(argv)
    trainer = Trainer(args)
    resumed = trainer.resume()
    log_path = trainer.dir / "log.csv"
    trainer.dir.mkdir(parents=True, exist_ok=True)
    new_log = not log_path.exists()
    t_end = time.monotonic() + args.minutes * 60
    t_save = time.monotonic() + args.checkpoint_minutes * 60
    window: list[float] = []
    with open(log_path, "a", newline="") as f, tqdm(desc=f"{args.model} step", initial=trainer.step,
                                                     unit="step", dynamic_ncols=True) as bar:
        log = csv.writer(f)
        if new_log:
            log.writerow(["step", "unix_time", "mse_mean_last_100", "psnr_db", "latent_fix_point", "lr"])
        bar.write(f"{'resumed' if resumed else 'started'} {args.model} at step {trainer.step} "
                  f"(checkpoints in {trainer.dir})")
        while time.monotonic() < t_end:
            loss, fix_point = trainer.train_step()
            window = (window + [loss])[-100:]
            bar.update(1)
            if trainer.step % 20 == 0:
                bar.set_postfix(psnr=f"{psnr(float(np.mean(window))):.2f}dB", F=fix_point)
            if trainer.step % 100 == 0:
                log.writerow([trainer.step, int(time.time()), f"{np.mean(window):.6g}",
                              f"{psnr(float(np.mean(window))):.3f}", fix_point, args.lr])
                f.flush()
            if time.monotonic() >= t_save:
                trainer.save()
                t_save = time.monotonic() + args.checkpoint_minutes * 60
        trainer.save()
        bar.write(f"saved {trainer.path} at step {trainer.step}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
