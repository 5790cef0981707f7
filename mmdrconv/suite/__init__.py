"""The benchmark suite: baseline vs DRConv across tasks, seeds and budgets.

The names below are imported on first use: a cell's process imports this
package (for its hooks) and must not load the suite's reader, planning or
report, which are no part of a cell's code version (``keys.py``).
"""
import importlib

_EXPORTS = dict(SuiteResultHook='.hooks', Cell='.spec', load_suite='.spec')
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name], __name__),
                       name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
