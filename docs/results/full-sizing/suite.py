# The full preset with its held-out MobileNetV2 task, to measure every
# variant's training step side by side before sizing `full` (issue 28;
# docs/suite.md, "The full preset at today's budgets"):
#   python -m mmdrconv.cli.suite_timing docs/results/full-sizing/suite.py \
#       --threads 1
_base_ = '../../../configs/suites/full.py'
suite = dict(name='full-sizing',
             tasks=_base_.suite.tasks + [_base_.mobilenetv2_task])
