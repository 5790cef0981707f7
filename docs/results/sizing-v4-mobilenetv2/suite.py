# Gate pilot of the MobileNetV2 DeepLabV3 task (docs/suite.md, "The gate"):
# its control (the depthwise 3x3 convs of layers 3-7 as 1x1) against the
# twin, two seeds, at the full preset's data and budget.
# Run: python tools/suite.py docs/results/sizing-v4-mobilenetv2/suite.py
#          --jobs 2
_mobilenet = 'configs/synthetic/mobilenet-v2-d8{}_deeplabv3_synthetic-cityscapes.py'
suite = dict(
    name='sizing-v4-mobilenetv2',
    seeds=[0, 1],
    datasets=dict(
        cityscapes=dict(kind='cityscapes', generate=True,
                        root='data/synthetic/cityscapes-v3', num_train=600,
                        num_val=150, image_size=(64, 128),
                        appearance_cue=0.0, seed=0)),
    tasks=[
        dict(name='mobilenetv2', dataset='cityscapes', metrics=['mIoU'],
             max_iters=600, evaluations=4, image_size=(64, 128),
             variants=dict(standard=_mobilenet.format(''),
                           control_1x1=_mobilenet.format('-1x1'))),
    ],
    profile=dict(repeat=5))
