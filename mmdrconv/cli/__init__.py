"""Command-line entry points (tools/ calls these)."""
import argparse
import contextlib
import os
import sys


def summary(doc: str) -> str:
    """The first paragraph of a module docstring, on one line: a tool's
    ``--help`` description (its first line alone may stop mid-sentence)."""
    return ' '.join(doc.strip().split('\n\n')[0].split())


def at_least(minimum: int):
    """An argparse ``type``: an int >= ``minimum``, else a usage error that
    names the option."""
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(
                f'must be at least {minimum}, got {value}')
        return value
    parse.__name__ = 'integer'  # argparse names the type in its errors
    return parse


def probability(text: str) -> float:
    """An argparse ``type``: a float in [0, 1]."""
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(
            f'must be a probability in [0, 1], got {value:g}')
    return value


class CfgOptions(argparse.Action):
    """mmengine's DictAction, with a usage error naming an item that is not
    KEY=VALUE (DictAction fails on it with a bare unpacking error).
    mmengine is imported only when the option is used."""

    def __call__(self, parser, namespace, values, option_string=None):
        for item in values:
            if '=' not in item:
                parser.error(f'argument {option_string}: {item!r} is not '
                             'KEY=VALUE')
        from mmengine.config import DictAction
        DictAction(self.option_strings, self.dest)(parser, namespace, values,
                                                   option_string)


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """The options tools/train.py and tools/test.py share with upstream."""
    parser.add_argument(
        '--data-root', metavar='DIR',
        help='read the train/val/test data from DIR and evaluate against '
        "the annotation files under DIR (the config's data_root, given once)")
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptions,
                        help='override config settings, key=value (a key '
                        'that names nothing in the config is an error)')
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch', 'slurm', 'mpi'])
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    add_trust_arg(parser)


def add_trust_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        '--trust-checkpoint', action='store_true',
        help='load checkpoints as trusted code (torch.load with '
        'weights_only=False). Checkpoints are otherwise loaded weights-only '
        'and refused if they hold anything else; use this only for files '
        'you trust.')


def parse(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    args = parser.parse_args(argv)
    if hasattr(args, 'local_rank'):
        os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    if getattr(args, 'trust_checkpoint', False):
        from mmdrconv.openmmlab import trust_checkpoints
        trust_checkpoints()
    return args


@contextlib.contextmanager
def user_errors(*more: type):
    """Mistakes in what the user asked for (an option naming nothing, a
    folder in use, nothing to resume, an output that cannot be written;
    ``more``: a tool's own such errors) end the tool with their message
    alone (exit status 1), not a traceback.
    """
    from mmdrconv.apis import ConfigOptionError
    from mmdrconv.runlock import FolderInUseError
    from mmdrconv.outputs import OutputPathError
    from mmdrconv.runner import NothingToResumeError
    try:
        yield
    except (ConfigOptionError, FolderInUseError, NothingToResumeError,
            OutputPathError, *more) as error:
        prog = os.path.basename(sys.argv[0] or 'mmdrconv')
        sys.stdout.flush()
        sys.exit(f'{prog}: error: {error}')
