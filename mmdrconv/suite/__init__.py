"""The benchmark suite: baseline vs DRConv across tasks, seeds and budgets."""
from .hooks import SuiteResultHook
from .spec import Cell, load_suite

__all__ = ['SuiteResultHook', 'Cell', 'load_suite']
