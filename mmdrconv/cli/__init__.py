"""Command-line entry points (tools/ calls these)."""
import argparse
import os

from mmengine.config import DictAction


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """The options tools/train.py and tools/test.py share with upstream."""
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch', 'slurm', 'mpi'])
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args
