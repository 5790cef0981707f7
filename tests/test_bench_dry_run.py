"""benchmarks/bench_drconv.py's device mode runs end to end (--dry-run),
and what it prints is what it measured.

The GPU benchmark cannot run here; its dry run is the same code on tiny
shapes on the CPU (wall-clock timing, no memory numbers), run here through
the script's command line. The printed ratios are recomputed from the
printed times, and the summary medians from the rows.
"""
import json
import os
import runpy
import statistics
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _table(stdout, header_start):
    """Rows (lists of cell strings) of the markdown table whose header line
    starts with ``header_start``."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines)
                 if line.startswith(header_start))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith('|'):
            break
        rows.append([cell.strip() for cell in line.strip('|').split('|')])
    return rows


def _assert_printed_ratio(ratio, numerator, denominator):
    """``ratio`` (printed to 2 decimals) is numerator / denominator, both
    printed to fewer digits: allow the rounding of all three."""
    value, a, b = float(ratio), float(numerator), float(denominator)
    digits = [len(s.split('.')[1]) if '.' in s else 0
              for s in (numerator, denominator)]
    rounding = 0.5 * 10.0 ** -min(digits)
    expected = a / b
    tolerance = 0.005 + expected * (rounding / a + rounding / b) * 1.01
    assert abs(value - expected) <= tolerance, (ratio, numerator,
                                                denominator)


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

    # The printed layer table: every ratio follows from the printed times.
    rows = _table(stdout, '| shape | dtype | method |')
    printed = {r[2]: r for r in rows}
    assert set(printed) == set(methods)
    conv, naive = printed['conv'], printed['naive']
    for method, r in printed.items():
        assert r[:2] == ['tiny 1x1 6->10@5x5', 'fp32']
        _assert_printed_ratio(r[4], r[3], conv[3])       # fwd / conv
        _assert_printed_ratio(r[6], r[5], conv[5])       # train / conv
        _assert_printed_ratio(r[7], naive[3], r[3])      # fwd speed-up
        _assert_printed_ratio(r[8], naive[5], r[5])      # train speed-up
        assert r[9:] == ['-', '-']  # no memory numbers on the CPU
        # ... and equal what the JSON holds, to the printed digits.
        assert r[4] == f"{methods[method]['fwd_vs_conv']:.2f}"
        assert r[8] == f"{methods[method]['train_speedup_vs_naive']:.2f}"
    # The backbone table: step / plain from the printed step times.
    plain_row, drconv_row = _table(stdout, '| backbone |')
    assert [plain_row[2], drconv_row[2]] == ['plain', 'drconv c3-c5']
    _assert_printed_ratio(drconv_row[5], drconv_row[4], plain_row[4])
    # The summary: medians over the rows of each method.
    for method in ('op', 'op-torch', 'modulated', 'mixture', 'paper'):
        line = next(x for x in stdout.splitlines()
                    if x.startswith(f'fp32 {method}: median over'))
        rows_of = [r for r in result['layers'] if r['method'] == method]
        fwd = statistics.median(r['fwd_vs_conv'] for r in rows_of)
        speedup = statistics.median(r['train_speedup_vs_naive']
                                    for r in rows_of)
        assert f'median over {len(rows_of)} shapes' in line
        assert f'fwd / conv {fwd:.2f},' in line, line
        assert f'train speed-up vs naive {speedup:.2f},' in line, line
    assert (f"fp32 backbone step with DRConv c3-c5 / plain: "
            f"{drconv['train_vs_plain']:.2f}") in stdout
