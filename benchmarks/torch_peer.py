"""PyTorch CPU peer for benchmarks/training.py: the same ResNet-18 (CIFAR form, ``width`` channels, BatchNorm,
1x1 projection shortcuts) trained with SGD momentum on random batches; prints ``{"images_per_s": ...}``.

Run with a Python that has torch (a separate venv: apache-tvm-ffi imports torch whenever it is installed beside it,
so torch never goes into the project's venv)."""

import argparse
import json
import time

import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out)
        self.c2, self.b2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out)
        self.short = (nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
                      if stride != 1 or c_in != c_out else nn.Identity())

    def forward(self, x):
        y = torch.relu(self.b1(self.c1(x)))
        return torch.relu(self.b2(self.c2(y)) + self.short(x))


def resnet18(width: int, classes: int = 10) -> nn.Module:
    layers, c_in = [nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()], width
    for stage, mult in enumerate((1, 2, 4, 8)):
        for block in range(2):
            layers.append(Block(c_in, width * mult, 2 if stage > 0 and block == 0 else 1))
            c_in = width * mult
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, classes))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--width", type=int, required=True)
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--steps", type=int, required=True)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = resnet18(a.width)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    x, y = torch.randn(a.batch, 3, 32, 32), torch.randint(0, 10, (a.batch,))
    times = []
    for i in range(a.steps + 2):   # two warm-up steps
        t = time.perf_counter()
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        if i >= 2:
            times.append(time.perf_counter() - t)
    times.sort()
    print(json.dumps({"images_per_s": a.batch / times[len(times) // 2], "torch": torch.__version__}))


if __name__ == "__main__":
    main()
