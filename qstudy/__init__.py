__version__ = "0.1.0"

def __getattr__(name):
    # `qstudy.evaluate(model, (x, y))` without importing torch at `import qstudy` (the command line answers --help fast)
    if name in ('evaluate', 'Evaluation'):
        from . import evaluation
        return getattr(evaluation, name)
    raise AttributeError(f"module 'qstudy' has no attribute {name!r}")
