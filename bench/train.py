"""Training throughput of `train_model` against a plain loop, in one process (images/s and their ratios).

    QSTUDY_DATA=../shared/data .venv/bin/python bench/train.py              # float, w1a1, w2a2 at width 1/8
    QSTUDY_DATA=../shared/data .venv/bin/python bench/train.py --images 5000 --models w1a1

The plain loop is what a hand-written PyTorch script does: random batches of CIFAR-10 held in memory, Adam,
BinaryConnect's clipping after each step, one pass over --images images; timed in fp32, in fp32 with
channels_last, with bf16 autocast in the default layout and with bf16 autocast + channels_last. `train_model` trains the same model for one epoch on the
same number of images through Lightning, at the cpu profile's layout and precision (channels_last for float and
weight-only models, the default layout where activations are quantized: `training.train_layout`; bf16 only where
the CPU has bf16 units). Its steps are timed as the plain loop's are: from the fourth batch to the last
whole one (a callback), so the ratio plain / train_model at the same layout and precision is Lightning's and the
data module's per-step overhead, which the issue bounds at 1.1x. The fit's whole wall time (data set-up, sanity
check, validation, first-call kernel compilation) is printed beside it.

One pass of either varies by up to ~15 % between identical runs on this machine (2 shared cores), more than the
overhead being measured: each model is therefore measured --repeats times, plain loop and train_model interleaved
so that a slow spell hits both, and the table gives medians with the ratio's median and range over the pairs.
"""
import argparse, contextlib, logging, statistics, tempfile, time
import torch
import torch.nn.functional as F
import lightning as L
from qstudy.models import build_model
from qstudy.quantizers import clip_binary_weights
from qstudy.training import train_model, train_settings, resolve_precision, train_layout
from qstudy.data import load
from qstudy.config import Run

logging.getLogger('lightning.pytorch').setLevel(logging.ERROR)

WARM = 3  # first steps allocate and (bf16) JIT their kernels: not throughput, in either loop

def timed_steps(n, batch):
    "Start indices of the steps timed in a pass over n images: after the warm-up, whole batches only."
    return range(WARM * batch, n - batch + 1, batch)   # an odd last batch makes oneDNN compile again

def cifar_subset(images, seed=0):
    "`images` random CIFAR-10 training images and labels, held in memory."
    x, y = load('cifar10', 'train')
    sel = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))[:images]
    return x[sel].contiguous(), y[sel]

def lightning_epoch(name, images, width, batch, callbacks):
    "train_model's record of one epoch on `images` training images (the profile's 10 % validation split taken from more)."
    return train_model(Run('cpu', 'cifar10', run_dir=tempfile.mkdtemp()), name, progress=False, epochs=1,
                       train_size=round(images / 0.9), width=width, batch_size=batch,
                       trainer_kwargs=dict(callbacks=callbacks))[1]

def plain_loop(name, x, y, width, batch, channels_last=False, bf16=False, seed=0, around=contextlib.nullcontext):
    "Images per second of one hand-written training pass over (x, y); the timed steps run inside `around()`."
    torch.manual_seed(seed)
    model = build_model(name, 'cifar10', width).train()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    order = torch.randperm(len(x))
    cast = (lambda: torch.autocast('cpu', dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
    def step(i):
        idx = order[i:i + batch]
        xb = x[idx].contiguous(memory_format=fmt)
        with cast(): loss = F.cross_entropy(model(xb), y[idx])
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step(); clip_binary_weights(model)
    for i in range(0, WARM * batch, batch): step(i)
    full = timed_steps(len(x), batch)
    with around():
        t0 = time.perf_counter()
        for i in full: step(i)
        t = time.perf_counter() - t0
    return len(full) * batch / t

class StepClock(L.Callback):
    "Times training steps as plain_loop does: from the first batch after the warm-up to the last whole batch's end."
    def __init__(self, batch): self.batch, self.t0, self.t1, self.images = batch, None, None, 0
    def on_train_batch_start(self, trainer, lit, batch, i):
        if i == WARM and self.t0 is None: self.t0 = time.perf_counter()
    def on_train_batch_end(self, trainer, lit, out, batch, i):
        if self.t0 is not None and len(batch[1]) == self.batch:
            self.t1, self.images = time.perf_counter(), self.images + self.batch
    def rate(self): return self.images / (self.t1 - self.t0)

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--models', nargs='+', default=['float', 'w1a1', 'w2a2'])
    ap.add_argument('--images', type=int, default=10_000)
    ap.add_argument('--width', type=float, default=0.125)
    ap.add_argument('--batch', type=int, default=128)
    ap.add_argument('--repeats', type=int, default=3, help='interleaved measurements per model (medians reported)')
    a = ap.parse_args()
    x, y = cifar_subset(a.images)
    print(f"CIFAR-10, {a.images} images, width {a.width}, batch {a.batch}, {torch.get_num_threads()} threads, "
          f"{a.repeats} interleaved repeats; images/s, medians")
    tr = train_settings('cpu', 'cifar10')
    prec = resolve_precision(tr['precision'], 'cpu')
    print(f"train_model at the cpu profile's settings: channels_last {tr['channels_last']}, precision {prec}")
    print(f"{'model':6s} {'plain fp32':>11s} {'plain CL':>9s} {'plain bf16':>11s} {'plain bf16+CL':>14s} {'train_model':>12s} "
          f"{'plain (same)/train_model':>25s} {'range':>12s} {'whole fit':>10s}")
    med = statistics.median
    for m in a.models:
        cl_used = train_layout(m, tr['channels_last']) == torch.channels_last
        key = {(False, False): 'fp32', (True, False): 'cl', (False, True): 'bf', (True, True): 'bfcl'}[(cl_used, prec.startswith('bf16'))]
        runs = []
        for r in range(a.repeats):
            rates = dict(fp32=plain_loop(m, x, y, a.width, a.batch),
                         cl=plain_loop(m, x, y, a.width, a.batch, channels_last=True),
                         bf=plain_loop(m, x, y, a.width, a.batch, bf16=True),
                         bfcl=plain_loop(m, x, y, a.width, a.batch, channels_last=True, bf16=True))
            clock = StepClock(a.batch)
            rec = lightning_epoch(m, a.images, a.width, a.batch, [clock])
            runs.append(dict(rates, tm=clock.rate(), whole=a.images / rec['train_seconds']))
        ratios = [r[key] / r['tm'] for r in runs]
        col = lambda k: med(r[k] for r in runs)
        print(f"{m:6s} {col('fp32'):11.0f} {col('cl'):9.0f} {col('bf'):11.0f} {col('bfcl'):14.0f} {col('tm'):12.0f} {med(ratios):24.2f}x "
              f"{min(ratios):5.2f}-{max(ratios):.2f}x {col('whole'):10.0f}", flush=True)

if __name__ == '__main__':
    main()
