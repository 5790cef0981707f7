"""Register with OpenMMLab whatever the import order, loading it never.

``import mmdrconv`` must register DRConv when OpenMMLab is in use (a script
that imports mmdrconv first for its core and builds configs afterwards;
a config whose ``custom_imports`` then finds mmdrconv already imported),
but must not import mmengine itself: the core is torch-only, and a torch
user should not pay for, or depend on, OpenMMLab. So: if mmengine is
already imported, load the adapter now; otherwise put a finder on
``sys.meta_path`` that lets mmengine's own import finish and then loads the
adapter. Torch alone only; the adapter is ``mmdrconv.openmmlab``.
"""
import importlib
import importlib.abc
import importlib.util
import sys
import warnings

_TRIGGER = 'mmengine'
_ADAPTER = 'mmdrconv.openmmlab'


def _load_adapter() -> None:
    # A broken OpenMMLab install must not break `import mmengine` for the
    # user, nor the torch-only core: warn with the reason instead.
    try:
        importlib.import_module(_ADAPTER)
    except Exception as error:  # noqa: BLE001 (any failure of upstream code)
        warnings.warn(
            f'mmdrconv: mmengine is installed but mmdrconv.openmmlab could '
            f'not be loaded ({type(error).__name__}: {error}); DRConv is not '
            f'registered with OpenMMLab. The torch-only core still works.',
            RuntimeWarning, stacklevel=2)


class _AfterMMEngineLoads(importlib.abc.MetaPathFinder):
    """Finds mmengine through the other finders and wraps its loader so
    that the adapter loads once mmengine's ``__init__`` has run. One-shot:
    it leaves ``sys.meta_path`` at its first use."""

    def find_spec(self, name, path=None, target=None):
        if name != _TRIGGER:
            return None
        _remove_hook()
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        original = loader.exec_module

        def exec_module(module):
            original(module)
            _load_adapter()

        # Per-instance override: the loader object is mmengine's alone.
        loader.exec_module = exec_module
        return spec


def _remove_hook() -> None:
    sys.meta_path[:] = [
        f for f in sys.meta_path if not isinstance(f, _AfterMMEngineLoads)
    ]


def register_when_openmmlab_loads() -> None:
    if _ADAPTER in sys.modules:
        return
    if _TRIGGER in sys.modules:
        _load_adapter()
    elif not any(isinstance(f, _AfterMMEngineLoads) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterMMEngineLoads())
