"""The manual stays true: README.md, docs/*.md and the configs' folder
READMEs against the code.

- every ```python block runs (``<!-- test: config -->`` blocks are configs:
  loaded and built through mmengine, and must select DRConv;
  ``<!-- test: skip, REASON -->`` blocks are skipped with REASON;
  ``<!-- test: quickstart -->`` blocks run in test_readme_quickstart.py);
- every command under the README's "Tools" runs with --help and has the
  options the README gives it; every script of tools/ and command of
  mmdrconv/cli is listed there;
- every config of configs/ is named in the README or its folder's table,
  every config they name exists, and the generated-data table's parameter
  counts and metrics match its models (built here) and the committed
  suite results;
- the sections the manual is made of, and every section or anchor it
  refers to, exist.
"""
import glob
import io
import json
import os.path as osp
import re
import runpy
import shlex
import subprocess
import sys
from contextlib import redirect_stdout

import pytest

from readme_doc import REPO, Document, folder_tables, manual_files, tables

DOCS = [Document(path) for path in manual_files()]
MAIN = DOCS[0]
assert MAIN.path == 'README.md'

# The sections a reader of each kind needs (issue 29): deleting one fails.
REQUIRED_SECTIONS = (
    'The two commands', 'Quick start', 'Installing', 'Pinned stack, and why',
    'The core alone (PyTorch only)',
    'Installing into an existing environment (e.g. CUDA)', 'Using DRConv',
    'In PyTorch', 'Filter generators (the `generator` option)',
    'In mmdet and mmseg configs', 'Pretrained weights offline', 'Configs',
    'Tools', 'Training, resuming, distributed runs',
    'Loading checkpoints safely', 'The benchmark suite', 'Running a suite',
    'Reading a report', 'On a Slurm cluster', 'Operator speed and memory',
    'Deploy: ONNX and torch.compile', 'Layout')
# What each of them must still say: the forms a user copies.
REQUIRED_TEXT = {
    'In PyTorch': ('DRConv(', 'convert_to_drconv(', 'region_conv(',
                   'torch.onnx.export', 'mixture_algorithm',
                   'channel_scale_generator', 'backend'),
    'In mmdet and mmseg configs': (
        "custom_imports = dict(imports=['mmdrconv']",
        "dcn=dict(type='DRConv'", "conv_cfg=dict(type='DRConv'",
        "type='ConvertToDRConv'", "type='DRConvMobileNetV2'", 'mmdet::',
        'mmseg::'),
    'Training, resuming, distributed runs': (
        '--resume', '--auto-resume', 'tools/dist_train.sh',
        'tools/slurm_train.sh'),
    'Loading checkpoints safely': ('--trust-checkpoint',
                                   'weights_only=True'),
    'The benchmark suite': ('--plan-seeds', '--jobs'),
    'On a Slurm cluster': ('--launcher slurm', ),
}


def _python_blocks():
    return [pytest.param(block, id=block.id) for doc in DOCS
            for block in doc.blocks
            if block.lang == 'python' and block.marker != 'quickstart']


def _snippet_name(block) -> str:
    """A config block's file name: its first line when that is
    ``# NAME.py``, else snippet.py."""
    first = block.code.split('\n', 1)[0]
    found = re.fullmatch(r'#\s*([\w.-]+\.py)\b.*', first)
    return found.group(1) if found else 'snippet.py'


@pytest.mark.parametrize('block', _python_blocks())
def test_python_block_runs(block, tmp_path, monkeypatch):
    marker = block.marker or ''
    if marker.startswith('skip'):
        reason = marker[len('skip'):].lstrip(' ,:')
        assert reason.startswith('needs '), (
            f'{block.id}: say what a skipped block needs, e.g. '
            '<!-- test: skip, needs a GPU -->')
        pytest.skip(f'{block.id} {reason}')
    assert marker in ('', 'config'), f'{block.id}: unknown marker {marker!r}'
    monkeypatch.chdir(tmp_path)  # blocks may write files (drconv.onnx)
    if marker == 'config':
        from mmdrconv.apis import build_model, load_config
        from mmdrconv.core.layers import DRConv
        path = tmp_path / _snippet_name(block)
        path.write_text(block.code)
        cfg = load_config(str(path))
        # As a user's own config: it loads mmdrconv itself (the tools
        # import custom_imports, nothing else would register DRConv).
        assert 'mmdrconv' in cfg.get('custom_imports', {}).get('imports', [])
        model = build_model(cfg)
        drconvs = [n for n, m in model.named_modules()
                   if isinstance(m, DRConv)]
        assert drconvs, f'{block.id}: the config builds no DRConv'
        return
    code = compile(block.code, block.id, 'exec')
    with redirect_stdout(io.StringIO()):
        exec(code, {'__name__': '__readme__'})


# ------------------------------------------------------------------ tools
def _command_lines(blocks):
    """The commands of the project in bash blocks: (key, options), where
    key is a script of tools/ or benchmarks/ (``tools/train.py``) or
    ``-m mmdrconv...``; other commands (make, pip) are left out."""
    commands = []
    for block in blocks:
        if block.lang != 'bash':
            continue
        for line in block.code.replace('\\\n', ' ').split('\n'):
            words = shlex.split(line, comments=True)
            while words and re.fullmatch(r'[A-Z_]+=\S*', words[0]):
                words.pop(0)  # environment: NNODES=2 tools/dist_train.sh
            if words and words[0].endswith('python'):
                words.pop(0)
            if len(words) > 1 and words[0] == '-m':
                key, rest = f'-m {words[1]}', words[2:]
            elif words:
                key, rest = words[0], words[1:]
            else:
                continue
            if not re.match(r'(tools|benchmarks)/|-m mmdrconv\.', key):
                continue
            options = re.findall(r'(?<![\w-])--[a-z][\w-]*', ' '.join(rest))
            commands.append((key, options))
    return commands


def _merged(commands):
    """Each command with the options it is shown with, over its lines."""
    merged = {}
    for key, options in commands:
        merged.setdefault(key, set()).update(options)
    return merged


# The README's "Tools" lists every command; any bash block of the manual
# may show one, with options that must exist.
TOOLS_COMMANDS = _merged(_command_lines(
    MAIN.blocks_in(MAIN.section('Tools'))))
SHOWN_COMMANDS = _merged(_command_lines(
    [block for doc in DOCS for block in doc.blocks]))


def _help_text(key, capsys, monkeypatch):
    """What ``KEY --help`` prints: Python tools in this process (runpy, as
    ``python tools/x.py`` or ``python -m`` runs them), shell scripts with
    bash (their usage line)."""
    if key.endswith('.sh'):
        result = subprocess.run(['bash', key, '--help'], cwd=REPO,
                                capture_output=True, text=True, timeout=60)
        assert 'usage:' in result.stderr and key in result.stderr, (
            f'{key} --help: {result.stdout + result.stderr}')
        return result.stderr
    monkeypatch.chdir(REPO)
    if key.startswith('-m '):
        module = key[3:]
        monkeypatch.setattr(sys, 'argv', [module, '--help'])
        run = lambda: runpy.run_module(module, run_name='__main__')  # noqa
    else:
        assert osp.isfile(osp.join(REPO, key)), f'{key}: no such tool'
        monkeypatch.setattr(sys, 'argv', [key, '--help'])
        run = lambda: runpy.run_path(key, run_name='__main__')  # noqa
    with pytest.raises(SystemExit) as stop:
        run()
    assert stop.value.code in (0, None), f'{key} --help failed'
    out = capsys.readouterr().out
    assert 'usage:' in out
    return out


@pytest.mark.parametrize('key', sorted(SHOWN_COMMANDS))
def test_command_has_help_and_the_options_shown(key, capsys, monkeypatch):
    text = _help_text(key, capsys, monkeypatch)
    missing = [o for o in sorted(SHOWN_COMMANDS[key])
               if not re.search(rf'(?<![\w-]){re.escape(o)}(?![\w-])', text)]
    assert not missing, (f'the manual shows {key} with {missing}, which its '
                         f'--help does not have:\n{text}')


def test_every_tool_and_cli_is_listed_under_tools():
    listed = set(TOOLS_COMMANDS)
    unlisted = []
    for path in sorted(glob.glob(osp.join(REPO, 'tools', '**', '*.*'),
                                 recursive=True)):
        if not path.endswith(('.py', '.sh')):
            continue
        name = osp.relpath(path, REPO)
        with open(path) as f:
            executable = f.readline().startswith('#!') or name.endswith('.py')
        if executable and name not in listed:
            unlisted.append(name)
        elif not executable and name not in MAIN.text:
            unlisted.append(f'{name} (sourced: named anywhere)')
    # Every command line of the package: through its tools/ shim or -m.
    shims = {}
    for key in listed:
        if key.endswith('.py'):
            with open(osp.join(REPO, key)) as f:
                shims.update(dict.fromkeys(
                    re.findall(r'mmdrconv\.cli\.(\w+)', f.read()), key))
    for path in sorted(glob.glob(osp.join(REPO, 'mmdrconv/cli/*.py'))):
        module = osp.splitext(osp.basename(path))[0]
        if module != '__init__' and module not in shims and \
                f'-m mmdrconv.cli.{module}' not in listed:
            unlisted.append(f'mmdrconv/cli/{module}.py')
    assert not unlisted, f'not in the README\'s "Tools": {unlisted}'


# ---------------------------------------------------------------- configs
def _config_files():
    return sorted(osp.relpath(p, REPO) for p in
                  glob.glob(osp.join(REPO, 'configs', '**', '*.py'),
                            recursive=True))


FOLDER_DOCS = {folder: Document(path)
               for folder, path in folder_tables().items()}


def test_every_config_is_named_in_the_readme_or_its_folder_table():
    suite_text = MAIN.section('The benchmark suite').text
    unnamed = []
    for config in _config_files():
        folder, name = config.split('/')[1], osp.basename(config)
        if folder == 'suites':
            preset = osp.splitext(name)[0]
            if f'`{preset}`' not in suite_text and config not in suite_text:
                unnamed.append(f'{config} (in "The benchmark suite")')
        elif folder == '_base_':
            if config not in MAIN.text:
                unnamed.append(config)
        else:
            table = FOLDER_DOCS.get(folder)
            if name not in MAIN.text and (table is None or
                                          f'`{name}`' not in table.text):
                unnamed.append(config)
    assert not unnamed, f'configs the manual does not name: {unnamed}'


def _named_configs():
    """Every config the README or a folder table names: paths under
    configs/, and file names in the README's "Configs" section and in the
    tables (of their folder)."""
    named = set(re.findall(r'\bconfigs/[\w./-]+?\.py\b', MAIN.text))
    folders = ('detection', 'segmentation', 'synthetic')
    for name in re.findall(r'`([\w.-]+\.py)`',
                           MAIN.section('Configs').text):
        found = [f'configs/{f}/{name}' for f in folders
                 if osp.isfile(osp.join(REPO, 'configs', f, name))]
        named.update(found or [f'configs/?/{name}'])
    for folder, doc in FOLDER_DOCS.items():
        named.update(f'configs/{folder}/{name}'
                     for name in re.findall(r'`([\w.-]+\.py)`', doc.text))
    return sorted(named)


def test_every_named_config_exists():
    # Loading and building: the config blocks above, the synthetic table's
    # parameter check below, and tests/test_openmmlab.py for every
    # COCO / Cityscapes config.
    named = _named_configs()
    assert len(named) >= len(_config_files()) - len(glob.glob(
        osp.join(REPO, 'configs', 'suites', '*.py')))
    missing = [c for c in named if not osp.isfile(osp.join(REPO, c))]
    assert not missing, f'named in the manual, not in configs/: {missing}'


def _table_rows(folder):
    rows = [row for table in tables(FOLDER_DOCS[folder].text)
            for row in table if 'config' in row]
    assert rows, f'configs/{folder}/README.md has no table with a config ' \
        'column'
    return rows


def _cell_name(cell):
    found = re.search(r'`([\w.-]+\.py)`', cell)
    return found.group(1) if found else None


@pytest.mark.parametrize('folder', sorted(FOLDER_DOCS))
def test_folder_table_lists_every_config_with_an_existing_twin(folder):
    rows = _table_rows(folder)
    names = [_cell_name(row['config']) for row in rows]
    configs = sorted(osp.basename(c) for c in _config_files()
                     if c.startswith(f'configs/{folder}/'))
    assert sorted(n for n in names if n) == configs
    for row in rows:
        twin = _cell_name(row['standard twin'])
        assert twin and osp.isfile(osp.join(REPO, 'configs', folder, twin)), \
            row
        assert row['params (M)'] and row['params (M)'] != '?', row


def test_synthetic_table_params_and_metrics_are_the_measured_ones():
    """Params: counted by building each model (what get_flops.py counts);
    metrics: the committed demo's results.json, and "not trained" or
    "pending" where it has none."""
    from mmdrconv.apis import build_model, load_config
    summary = {}
    # The v3 demo first: its Mask R-CNN rows; the current demo's override.
    for run in ('demo-v3', 'demo'):
        with open(osp.join(REPO, 'docs/results', run, 'results.json')) as f:
            summary.update({osp.basename(s['config']): s
                            for s in json.load(f)['summary']})
    wrong = []
    for row in _table_rows('synthetic'):
        name = _cell_name(row['config'])
        model = build_model(load_config(
            osp.join(REPO, 'configs/synthetic', name)))
        params = sum(p.numel() for p in model.parameters()) / 1e6
        if row['params (M)'] != f'{params:.2f}':
            wrong.append(f'{name}: params {row["params (M)"]}, the model '
                         f'has {params:.2f} M')
        metric = next(v for k, v in row.items() if k.startswith('metric'))
        if name not in summary:
            if not re.search(r'not trained|pending', metric):
                wrong.append(f'{name}: {metric!r}, not in the demo results')
            continue
        for key, value in summary[name]['metrics'].items():
            mean = value['mean']
            shown = f'{mean:.3f}' if abs(mean) < 1 else f'{mean:.2f}'
            if shown not in metric:
                wrong.append(f'{name}: {key} {shown} not in {metric!r}')
    assert not wrong, ('configs/synthetic/README.md differs (params: '
                       'tools/analysis/get_flops.py CONFIG):\n' +
                       '\n'.join(wrong))


# --------------------------------------------------------------- sections
def test_the_manual_has_its_sections():
    titles = [s.title for s in MAIN.sections]
    missing = [t for t in REQUIRED_SECTIONS if t not in titles]
    assert not missing, f'README.md lost the sections {missing}'
    for title, needles in REQUIRED_TEXT.items():
        text = MAIN.section(title).text
        lost = [n for n in needles if n not in text]
        assert not lost, f'README.md, "{title}", no longer shows {lost}'


def test_the_manual_documents_the_extras_registrations_and_variables():
    """What a user types comes from the code: every pip extra of setup.py,
    every name mmdrconv registers with OpenMMLab, the environment
    variables of the checkpoint policy."""
    from mmengine.registry import MODELS

    from mmdrconv.openmmlab import checkpoint
    with open(osp.join(REPO, 'setup.py')) as f:
        setup = f.read()
    extras = re.findall(r'^\s+(\w+)=', setup.split('extras_require=dict(')[1]
                        .split('\n    ),')[0], re.M)
    assert 'openmmlab' in extras
    install = MAIN.section('Installing').text
    lost = [f'.[{e}]' for e in extras if f'.[{e}]' not in install]
    registered = sorted(name for name, obj in MODELS.module_dict.items()
                        if getattr(obj, '__module__', '').startswith(
                            'mmdrconv'))
    assert 'DRConv' in registered
    configs = MAIN.section('In mmdet and mmseg configs').text
    lost += [f'`{n}`' for n in registered if f'`{n}`' not in configs]
    lost += [v for v in (checkpoint.TRUST_ENV, checkpoint.PRETRAINED_DIR_ENV,
                         checkpoint.DEFAULT_PRETRAINED_DIRS[0])
             if v not in MAIN.text]
    assert not lost, f'README.md does not mention {lost}'


def _references():
    """(where, section title, what it must contain) for every reference to
    a section of the README: ``see "Title"`` in it, ``README, "Title"``
    and ``README, Title: --option`` in the docs and the package."""
    found = [(MAIN.path, ' '.join(title.split()), None) for title in
             re.findall(r'\b[Ss]ee "([^"]+)"', MAIN.text)]
    sources = [d for d in DOCS] + glob.glob(
        osp.join(REPO, 'mmdrconv', '**', '*.py'), recursive=True)
    for source in sources:
        if isinstance(source, Document):
            where, text = source.path, source.text
        else:
            where = osp.relpath(source, REPO)
            with open(source) as f:
                text = f.read()
        found += [(where, ' '.join(t.split()), None)
                  for t in re.findall(r'README, "([^"]+)"', text)]
        found += [(where, t, option) for t, option in re.findall(
            r'README, ([A-Z][\w ]*?): (--[\w-]+)', text)]
    return found


def test_every_referred_section_exists():
    references = _references()
    assert any(t == 'Using DRConv' for _, t, _ in references)
    broken = []
    for where, title, option in references:
        titles = [s.title for s in MAIN.sections]
        if title not in titles:
            broken.append(f'{where}: "{title}"')
        elif option and option not in MAIN.section(title).text:
            broken.append(f'{where}: "{title}" says nothing of {option}')
    assert not broken, f'references to README sections it lacks: {broken}'


def test_every_relative_link_and_anchor_exists():
    broken = []
    for doc in DOCS:
        text = re.sub(r'```.*?```', '', doc.text, flags=re.S)
        for target in re.findall(r'\]\(([^)\s]+)\)', text):
            if re.match(r'[a-z]+://', target):
                continue
            path, _, anchor = target.partition('#')
            here = osp.dirname(osp.join(REPO, doc.path))
            full = osp.normpath(osp.join(here, path)) if path else \
                osp.join(REPO, doc.path)
            if not osp.exists(full):
                broken.append(f'{doc.path}: {target}')
            elif anchor and full.endswith('.md') and \
                    anchor not in Document(full).anchors:
                broken.append(f'{doc.path}: {target} (no such heading)')
    assert not broken, f'broken links: {broken}'


def test_markers_are_known():
    known = re.compile(r'config|quickstart|skip, needs .+')
    for doc in DOCS:
        for block in doc.blocks:
            assert block.marker is None or known.fullmatch(block.marker), \
                f'{block.id}: unknown marker {block.marker!r}'
