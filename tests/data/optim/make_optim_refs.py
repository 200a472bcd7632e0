#!/usr/bin/python3
"""Reference trajectories of torch.optim.Adam / torch.optim.SGD (float64, CPU) on the
coupled quadratic of tests/lua/test_optim.lua:
    f(x) = sum_i c_i (x_i - a_i)^2 + 0.1 x_1 x_2
Writes adam_torch.npy ((3 configs * 25 steps) x 4) and sgd_torch.npy ((4 * 20) x 4): x after
each step, row (config - 1) * steps + step (2-d so qd.load_npy reads a qd.Matrix). Run: /usr/bin/python3 tests/data/optim/make_optim_refs.py (needs
python3-torch; make check only reads the .npy files)."""
import os
import numpy as np
import torch

here = os.path.dirname(os.path.abspath(__file__))
c = torch.tensor([1.0, 3.0, 0.5, 2.0], dtype=torch.float64)
a = torch.tensor([0.3, -1.2, 2.0, 0.0], dtype=torch.float64)
x0 = [1.0, 0.5, -0.7, 2.5]


def f(x):
    return (c * (x - a) ** 2).sum() + 0.1 * x[0] * x[1]


def run(make_opt, steps):
    x = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    opt = make_opt([x])
    out = []
    for _ in range(steps):
        opt.zero_grad()
        f(x).backward()
        opt.step()
        out.append(x.detach().numpy().copy())
    return np.array(out)


adam_cfgs = [dict(lr=0.05), dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6), dict(lr=0.02, weight_decay=0.1)]
sgd_cfgs = [dict(lr=0.05), dict(lr=0.05, momentum=0.9), dict(lr=0.02, momentum=0.9, nesterov=True),
            dict(lr=0.05, momentum=0.5, dampening=0.3, weight_decay=0.01)]
adam = np.array([run(lambda p, k=k: torch.optim.Adam(p, foreach=False, **k), 25) for k in adam_cfgs])
sgd = np.array([run(lambda p, k=k: torch.optim.SGD(p, foreach=False, **k), 20) for k in sgd_cfgs])
np.save(os.path.join(here, "adam_torch.npy"), adam.reshape(-1, 4))
np.save(os.path.join(here, "sgd_torch.npy"), sgd.reshape(-1, 4))
print("torch", torch.__version__, adam.shape, sgd.shape)
