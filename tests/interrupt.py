"""Run a training entry point and SIGKILL it right after the checkpoint of
iteration ITER is saved: an interrupted run at a known point, with no
clean-up (test helper, not a test).

    python tests/interrupt.py ITER tools/train.py ARGS...
    python tests/interrupt.py ITER -m mmdrconv.cli.suite_cell ARGS...
"""
import os
import runpy
import signal
import sys


def kill_after_checkpoint(iteration: int) -> None:
    from mmengine.hooks import CheckpointHook
    original = CheckpointHook.after_train_iter

    def after_train_iter(self, runner, *args, **kwargs):
        original(self, runner, *args, **kwargs)
        if runner.iter + 1 == iteration:
            os.kill(os.getpid(), signal.SIGKILL)

    CheckpointHook.after_train_iter = after_train_iter


def main():
    iteration, target, *args = sys.argv[1:]
    kill_after_checkpoint(int(iteration))
    if target == '-m':
        module, *args = args
        sys.argv = [module, *args]
        runpy.run_module(module, run_name='__main__', alter_sys=True)
    else:
        sys.argv = [target, *args]
        runpy.run_path(target, run_name='__main__')


if __name__ == '__main__':
    main()
