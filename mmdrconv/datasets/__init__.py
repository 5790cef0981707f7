from .checks import check_dataset
from .synthetic import (COCO_CLASSES, generate, generate_cityscapes,
                        generate_coco)

__all__ = ['generate', 'generate_coco', 'generate_cityscapes',
           'check_dataset', 'COCO_CLASSES']
