#!/usr/bin/python3
"""bench_nn_torch.py: the PyTorch side of `cnnkit bench`: the identical model (built by cnk_torch.py from the
cfg text `cnnkit summary ARCH --write-cfg FILE` writes), the same random batch, the same training step
(forward, softmax cross-entropy, backward, Adam) or inference, the same thread count. The last line is
`samples_per_s=<number>`, as cnnkit bench prints. Run with Debian's /usr/bin/python3.

    bench_nn_torch.py FILE.cfg [--batch 32] [--steps 10] [--warmup 2] [--threads N] [--infer]
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

from cnk_torch import build_torch_model  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("cfg")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--infer", action="store_true")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(42)
    with open(args.cfg) as f:
        model = build_torch_model(f.read())
    inputs = [torch.randn(args.batch, *model.shapes[model.names.index(n)]) for n in model.input_names]
    with torch.no_grad():
        out = model(*inputs)
    outs = out if isinstance(out, tuple) else (out,)
    labels = torch.randint(0, outs[0].shape[1], (args.batch,))
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)

    def step():
        if args.infer:
            with torch.no_grad():
                model(*inputs)
            return
        res = model(*inputs)
        res = res if isinstance(res, tuple) else (res,)
        loss = sum(torch.nn.functional.cross_entropy(o, labels) for o in res)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    if args.infer:
        model.eval()
    else:
        model.train()
    for _ in range(args.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    elapsed = time.perf_counter() - t0
    print("torch=%s threads=%d batch=%d mode=%s steps=%d ms_per_step=%.2f" %
          (torch.__version__, torch.get_num_threads(), args.batch, "infer" if args.infer else "train", args.steps,
           1e3 * elapsed / args.steps))
    print("samples_per_s=%.2f" % (args.batch * args.steps / elapsed))


if __name__ == "__main__":
    main()
