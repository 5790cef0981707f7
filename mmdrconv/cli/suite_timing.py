"""Training-step time of every variant of a suite, side by side in one
process, to size a preset before running it (mmdrconv/suite/timing.py).

    python -m mmdrconv.cli.suite_timing configs/suites/full.py [--rounds 3]
        [--steps 3] [--threads 1]
"""
import argparse
import os

from . import at_least, summary


def main(argv=None):
    parser = argparse.ArgumentParser(description=summary(__doc__))
    parser.add_argument('suite')
    parser.add_argument('--rounds', type=at_least(1), default=3)
    parser.add_argument('--steps', type=at_least(1), default=3,
                        help='timed training steps per variant and round')
    parser.add_argument('--threads', type=at_least(1), default=None,
                        help='torch intra-op threads (default: torch\'s)')
    args = parser.parse_args(argv)
    import torch

    from ..core.timing import num_threads
    from ..suite.spec import load_suite
    from ..suite.timing import time_variants
    suite = load_suite(args.suite)
    with num_threads(args.threads):
        rows = time_variants(suite, args.rounds, args.steps,
                             log=lambda line: print(line, flush=True))
        threads = torch.get_num_threads()
    seeds = len(suite.seeds)
    print(f'{"task":24s} {"variant":15s} {"s/step":>7s} {"CPU s":>7s} '
          f'{"CPU x ref":>9s} {"steps x seeds":>13s} {"wall min":>8s}')
    total = 0.0
    for row in rows:
        iters = (row['max_iters'] or 0) * seeds
        total += row['step_s'] * iters / 60
        print(f"{row['task']:24s} {row['variant']:15s} "
              f"{row['step_s']:7.3f} {row['cpu_s']:7.3f} "
              f"{row['vs_reference']:9.2f} {iters:13d} "
              f"{row['step_s'] * iters / 60:8.1f}")
    print(f'training steps of the whole suite at these wall times: '
          f'{total:.1f} min (without start-up, evaluation and profiling); '
          f'{threads} threads; load average {os.getloadavg()[0]:.1f}')


if __name__ == '__main__':
    main()
