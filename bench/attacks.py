"""Each qstudy attack against its reference implementation, on one trained model, in one process.

    QSTUDY_DATA=../shared/data .venv/bin/python bench/attacks.py --profile cpu --dataset cifar10

Prints, per attack: seconds per image, success rate, mean L2 of successes, model evaluations per image (images
through the forward pass; input-gradient images counted apart), the share of wall time spent outside the
model's forward/backward passes (estimated from the raw throughputs measured in the same run), and the
ratios ours / reference. References (test-only): foolbox 3 (FGSM, BIM, CW-L2), torchattacks (SPSA), ART (ZOO).
"""
import argparse, logging, time
import numpy as np
import torch
from qstudy.training import train_model, predict
from qstudy.data import load
from qstudy.metrics import attack_points
from qstudy.attacks import attack, attack_params
from qstudy.config import Run

logging.getLogger('lightning.pytorch').setLevel(logging.ERROR)

class Counting(torch.nn.Module):
    "Wraps a model and counts the images it sees, with and without gradient."
    def __init__(self, model):
        super().__init__(); self.model, self.fwd, self.grad = model, 0, 0
    def forward(self, x):
        if torch.is_grad_enabled() and x.requires_grad: self.grad += len(x)
        else: self.fwd += len(x)
        return self.model(x)

def throughput(model, batch, grad, reps=3):
    "Images per second of the raw forward (or forward + input gradient) at this batch size."
    x = torch.rand(batch, 3, 32, 32)
    def once():
        if grad:
            xx = x.clone().requires_grad_(True); model(xx).sum().backward()
        else:
            with torch.no_grad(): model(x)
    once(); t = time.perf_counter()
    for _ in range(reps): once()
    return batch * reps / (time.perf_counter() - t)

def evaluate(model, x, y, xa, wall, cm, fwd_rate, grad_rate):
    "Success, mean L2, evaluations and the share of wall time outside the model (rates at the attack's batch)." 
    ok = predict(model, xa) != y
    l2 = (xa - x)[ok].flatten(1).norm(dim=1).mean().item() if ok.any() else float('nan')
    model_s = cm.fwd / fwd_rate + cm.grad / grad_rate
    return dict(s_per_image=wall / len(x), success=ok.float().mean().item(), l2=l2,
                evals_per_image=(cm.fwd + cm.grad) / len(x), outside=max(0.0, 1 - model_s / wall))

def run(name, fn, model, x, y, fwd_rate, grad_rate):
    cm = Counting(model).eval()
    for p in model.parameters(): p.requires_grad_(False)
    t = time.perf_counter(); xa = fn(cm, x, y); wall = time.perf_counter() - t
    return evaluate(model, x, y, torch.as_tensor(xa).float(), wall, cm, fwd_rate, grad_rate)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--profile', default='cpu'); ap.add_argument('--dataset', default='cifar10')
    ap.add_argument('--model', default='float'); ap.add_argument('--run-dir', default=None)
    ap.add_argument('--n', type=int, nargs=5, default=[100, 100, 20, 2, 2], metavar=('FGSM', 'BIM', 'CW', 'SPSA', 'ZOO'),
                    help='images per attack')
    a = ap.parse_args()
    import foolbox as fb, torchattacks as ta
    from art.attacks.evasion import ZooAttack
    from art.estimators.classification import PyTorchClassifier
    torch.manual_seed(0); np.random.seed(0)
    model, rec = train_model(Run(a.profile, a.dataset, run_dir=a.run_dir), a.model, progress=False)
    model.eval()
    xs, ys = load(a.dataset, 'test')
    idx = attack_points(predict(model, xs) == ys, max(a.n), seed=0)
    print(f"model {a.model} ({a.dataset}, {a.profile}: width {rec['config']['width']}), accuracy {rec['accuracy']:.3f}, "
          f"{torch.get_num_threads()} threads")
    rates = {}
    def rate(b):
        "Raw (forward, input-gradient) images/s at batch b, measured once in this process."
        if b not in rates:
            rates[b] = (throughput(model, b, False), throughput(model, min(b, 256), True))
            print(f"  raw throughput at batch {b:5d}: forward {rates[b][0]:8.0f} img/s, input gradient {rates[b][1]:7.0f} img/s")
        return rates[b]
    for b in (1, 100, 256, 512, 4096): rate(b)
    # the forward batch each attack mostly runs: white-box attacks the n images at once; SPSA 2 x samples per
    # image, ZOO 2 x coords + 1 per image (ours chunked by 256)
    typical = dict(fgsm=None, bim=None, cwl2=None, spsa=2 * attack_params('spsa')['samples'], zoo=256)
    P = {k: attack_params(k) for k in ('fgsm', 'bim', 'cwl2', 'spsa', 'zoo')}
    fbm = lambda m: fb.PyTorchModel(m, bounds=(0, 1))
    cases = [
        ('fgsm', a.n[0], lambda m, x, y: attack('fgsm', m, x, y),
         lambda m, x, y: fb.attacks.LinfFastGradientAttack(random_start=False)(fbm(m), x, y, epsilons=P['fgsm']['eps'])[1], 'foolbox'),
        ('bim', a.n[1], lambda m, x, y: attack('bim', m, x, y),
         lambda m, x, y: fb.attacks.LinfBasicIterativeAttack(abs_stepsize=P['bim']['step_size'], steps=P['bim']['steps'],
                                                             random_start=False)(fbm(m), x, y, epsilons=P['bim']['eps'])[1], 'foolbox'),
        ('cwl2', a.n[2], lambda m, x, y: attack('cwl2', m, x, y),
         lambda m, x, y: fb.attacks.L2CarliniWagnerAttack(binary_search_steps=P['cwl2']['binary_search_steps'], steps=P['cwl2']['steps'],
                                                          stepsize=P['cwl2']['lr'], initial_const=P['cwl2']['initial_const'],
                                                          confidence=0, abort_early=True)(fbm(m), x, y, epsilons=None)[0], 'foolbox'),
        ('spsa', a.n[3], lambda m, x, y: attack('spsa', m, x, y),
         lambda m, x, y: ta.SPSA(m, eps=P['spsa']['eps'], delta=P['spsa']['delta'], lr=P['spsa']['lr'], nb_iter=P['spsa']['steps'],
                                 nb_sample=P['spsa']['samples'], max_batch_size=P['spsa']['samples'])(x, y), 'torchattacks'),
        ('zoo', a.n[4], lambda m, x, y: attack('zoo', m, x, y),
         lambda m, x, y: ZooAttack(PyTorchClassifier(model=m, loss=torch.nn.CrossEntropyLoss(), input_shape=(3, 32, 32), nb_classes=10,
                                                     clip_values=(0., 1.)), confidence=0., targeted=False, learning_rate=P['zoo']['lr'],
                                   max_iter=P['zoo']['steps'], binary_search_steps=P['zoo']['binary_search_steps'],
                                   initial_const=P['zoo']['initial_const'], abort_early=True, use_resize=False, use_importance=False,
                                   nb_parallel=P['zoo']['coords'], batch_size=1, variable_h=P['zoo']['h'], verbose=False
                                   ).generate(x.numpy(), y.numpy()), 'ART'),
    ]
    hdr = f"{'attack':6s} {'impl':12s} {'n':>4s} {'s/img':>9s} {'success':>8s} {'mean L2':>8s} {'evals/img':>10s} {'outside':>8s}"
    print('\n' + hdr + '\n' + '-' * len(hdr))
    for name, n, ours, ref, refname in cases:
        x, y = xs[idx[:n]], ys[idx[:n]]
        r = {}
        fr, gr = rate(typical[name] or n)
        for impl, fn in (('qstudy', ours), (refname, ref)):
            r[impl] = run(name, fn, model, x, y, fr, gr)
            v = r[impl]
            print(f"{name:6s} {impl:12s} {n:4d} {v['s_per_image']:9.3f} {v['success']:8.2f} {v['l2']:8.3f} "
                  f"{v['evals_per_image']:10.0f} {v['outside']:8.0%}", flush=True)
        q, f = r['qstudy'], r[refname]
        print(f"{name:6s} {'ratio':12s} {'':4s} {q['s_per_image'] / f['s_per_image']:9.2f}x "
              f"{q['success'] - f['success']:+8.2f} {q['l2'] / f['l2'] if f['l2'] == f['l2'] and f['l2'] > 0 else float('nan'):8.2f} "
              f"{q['evals_per_image'] / max(f['evals_per_image'], 1):10.2f}", flush=True)

if __name__ == '__main__':
    main()
