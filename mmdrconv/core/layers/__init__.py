"""DRConv layers and the suite's control layers; torch alone."""
from .controls import FrozenConv, PointwiseConv, SkipConv, convs_as_pointwise
from .drconv import GENERATORS, DRConv, GeneratedFilterDRConv, ModulatedDRConv
from .generators import MixtureFilters, PaperFilters, RegionChannelScales

__all__ = [
    'DRConv', 'ModulatedDRConv', 'GeneratedFilterDRConv', 'GENERATORS',
    'MixtureFilters', 'PaperFilters', 'RegionChannelScales', 'PointwiseConv',
    'FrozenConv', 'SkipConv', 'convs_as_pointwise'
]
