"""benchmarks/bench_drconv.py's device mode runs end to end (--dry-run).

The GPU benchmark cannot run here; its dry run is the same code on tiny
shapes on the CPU (wall-clock timing, no memory numbers), run here through
the script's command line.
"""
import json
import os
import runpy
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_device_benchmark_dry_run(tmp_path, monkeypatch, capsys):
    out = tmp_path / 'bench.json'
    script = os.path.join(ROOT, 'benchmarks', 'bench_drconv.py')
    monkeypatch.syspath_prepend(os.path.dirname(script))
    monkeypatch.setattr(sys, 'argv', [
        script, '--device', 'cpu', '--dry-run', '--dtypes', 'fp32',
        '--shapes', '1x1', '--region-num', '4', '--json', str(out)])
    runpy.run_path(script, run_name='__main__')
    stdout = capsys.readouterr().out
    result = json.loads(out.read_text())
    methods = {r['method']: r for r in result['layers']}
    assert set(methods) == {'conv', 'naive', 'op', 'op-torch', 'modulated',
                            'mixture', 'paper'}
    for row in methods.values():
        assert row['fwd_ms'] > 0 and row['train_ms'] > 0, row
        assert abs(row['fwd_vs_conv'] * methods['conv']['fwd_ms'] -
                   row['fwd_ms']) < 1e-6 * row['fwd_ms']
        assert abs(row['train_speedup_vs_naive'] * row['train_ms'] -
                   methods['naive']['train_ms']) < 1e-6 * row['train_ms']
    plain, drconv = result['backbone']
    assert (plain['drconv_layers'], drconv['drconv_layers']) == (0, 3)
    assert drconv['train_vs_plain'] == drconv['train_ms'] / plain['train_ms']
    assert '| tiny 1x1 6->10@5x5 | fp32 | mixture |' in stdout
