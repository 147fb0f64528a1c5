"""The device policy, checked on a GPU: the smoke study's models and every attack on the device against the CPU.

    python bench/device_check.py                 # on a machine with CUDA: --device cuda (the default when there is one)
    python bench/device_check.py --device cpu    # here: the same code on the CPU twice (must agree exactly)

Trains (or loads) the nine smoke models into --run-dir, then, per model: the test-set predictions on both
devices (top-1 agreement), and for every attack in the registry the same points and seed crafted on both:
success rate on each, the largest |x_adv(cpu) - x_adv(device)|, and seconds on each with their ratio. The
deterministic attacks (FGSM, BIM, CW-L2, BPDA) should agree up to float rounding; the random ones (SPSA, ZOO,
Square) draw from the device's own generator, so only their success rates are comparable. Then the user's path:
`qstudy.evaluate` on the smoke w1a1 with float as its reference, both on the device, against the same on the CPU
(clean accuracy, each attack's accuracy, the worst case, the masking verdict), and the caller's models must stay
on their device and in eval mode. Exit code 1 when a model's predictions agree on less than 99 % of the test
set, a deterministic attack's success differs by more than 0.1 (on 40 points), an evaluation's deterministic
numbers differ by more than 0.1 or its masking verdict differs, or evaluate moves a model.
"""
import argparse, sys, tempfile, time
import torch
from qstudy.config import MODEL_NAMES, resolve_device
from qstudy.training import train_model, predict
from qstudy.attacks import attack, ATTACKS
from qstudy.metrics import attack_settings, attack_points
from qstudy.data import load
from qstudy.config import Run
from qstudy.evaluation import evaluate
from qstudy.strongest import strongest_settings

DETERMINISTIC = ('fgsm', 'bim', 'cwl2', 'bpda')

def check_evaluate(models, x, y, points):
    "Problems found when `qstudy.evaluate` runs w1a1 (reference: float) on the device against the CPU; prints both."
    bad, evs = [], []
    for d, (m, ref) in models:   # [(cpu, (w1a1, float)), (device, (w1a1, float))]
        t0 = time.time()
        evs.append((d, evaluate(m, (x, y), reference=ref, n=points, seed=0)))
        if d.type == 'cuda': torch.cuda.synchronize()
        where = {next(k.parameters()).device.type for k in (m, ref)}
        if where != {d.type} or m.training or ref.training: bad.append(f'evaluate on {d} left the models on {where}, training={m.training}')
        print(f"evaluate on {evs[-1][1].runtime['device']}: {time.time() - t0:.1f} s; {evs[-1][1].summary}")
    (c, ec), (g, eg) = evs
    pairs = [('clean', ec.clean, eg.clean), ('worst case', ec.worst_case, eg.worst_case)]
    pairs += [(a, ec.attacks[a], eg.attacks.get(a)) for a in ec.attacks]
    for name, rc, rg in pairs:
        if rg is None: bad.append(f'evaluate: {name} ran on {c} but not on {g}'); continue
        print(f"  {name:12s} cpu {rc['accuracy']:.3f}  {g.type} {rg['accuracy']:.3f}")
        # evaluate's random ones (PGD, APGD, Square, AutoAttack) draw from the device's generator: only printed
        if (name == 'clean' or name in DETERMINISTIC) and abs(rc['accuracy'] - rg['accuracy']) > 0.1:
            bad.append(f"evaluate {name}: accuracy {rc['accuracy']:.2f} on cpu, {rg['accuracy']:.2f} on {g}")
    if ec.masking['masked'] != eg.masking['masked']:
        bad.append(f"evaluate masking: {ec.masking['verdict']!r} on cpu, {eg.masking['verdict']!r} on {g}")
    return bad

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--run-dir', default=None)
    p.add_argument('--points', type=int, default=40)
    a = p.parse_args(argv)
    dev, cpu = resolve_device(a.device), torch.device('cpu')
    run_dir = a.run_dir or tempfile.mkdtemp(prefix='qstudy-device-')
    x, y = load('digits', 'test')
    bad, strong = [], strongest_settings('smoke')[1]
    print(f"device {dev} vs cpu; run dir {run_dir}")
    print(f"{'model':7s} {'attack':7s} {'succ cpu':>8s} {'succ dev':>8s} {'max|dx|':>9s} {'s cpu':>7s} {'s dev':>7s} {'ratio':>6s}")
    for m in MODEL_NAMES:
        m_cpu, _ = train_model(Run('smoke', 'digits', run_dir=run_dir), m, progress=False, device=cpu)
        m_dev, _ = train_model(Run('smoke', 'digits', run_dir=run_dir), m, progress=False, device=dev)
        agree = (predict(m_cpu, x) == predict(m_dev, x)).float().mean().item()
        print(f"{m:7s} predictions agree on {agree:.4f} of {len(y)} test points")
        if agree < 0.99: bad.append(f'{m}: predictions agree on {agree:.3f}')
        idx = attack_points(predict(m_cpu, x) == y, a.points, seed=0)
        xs, ys = x[idx], y[idx]
        for name in ATTACKS:
            _, params, _ = attack_settings(Run('smoke'), name, a.points, **strong.get(name, {}))   # the strongest section's for its attacks
            out = []
            for d, model in ((cpu, m_cpu), (dev, m_dev)):
                t0 = time.time()
                xa = attack(name, model, xs, ys, seed=0, **params)
                if d.type == 'cuda': torch.cuda.synchronize()
                out.append((xa.cpu(), time.time() - t0, model))
            (xc, tc, mc), (xd, td, md) = out
            sc = (predict(mc, xc) != ys).float().mean().item(); sd = (predict(md, xd) != ys).float().mean().item()
            print(f"{m:7s} {name:7s} {sc:8.3f} {sd:8.3f} {(xc - xd).abs().max().item():9.2e} {tc:7.2f} {td:7.2f} {tc / max(td, 1e-9):6.1f}")
            if name in DETERMINISTIC and abs(sc - sd) > 0.1: bad.append(f'{m} {name}: success {sc:.2f} on cpu, {sd:.2f} on {dev}')
    run = Run('smoke', 'digits', run_dir=run_dir)
    models = [(d, tuple(train_model(run, m, progress=False, device=d)[0] for m in ('w1a1', 'float'))) for d in (cpu, dev)]
    bad += check_evaluate(models, x, y, a.points)
    print('\n'.join(['FAILED:'] + bad) if bad else 'device check passed')
    return 1 if bad else 0

if __name__ == '__main__':
    sys.exit(main())
