"""setup.py promises what the project tests."""
import ast
import os.path as osp
import re

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def setup_keywords():
    with open(osp.join(REPO, 'setup.py')) as f:
        tree = ast.parse(f.read())
    call = next(node for node in ast.walk(tree)
                if isinstance(node, ast.Call)
                and getattr(node.func, 'id', None) == 'setup')
    return {k.arg: k.value for k in call.keywords}


def test_python_requires_is_the_tested_python():
    # It said '>=3.8' while only 3.11 (the Makefile's venv) is tested.
    with open(osp.join(REPO, 'Makefile')) as f:
        tested = re.search(r'^PYTHON_BOOTSTRAP \?= python(\d+\.\d+)$',
                           f.read(), re.M).group(1)
    requires = ast.literal_eval(setup_keywords()['python_requires'])
    assert requires == f'>={tested}'
