"""DRConv layers; torch alone."""
from .drconv import GENERATORS, DRConv, GeneratedFilterDRConv, ModulatedDRConv
from .generators import MixtureFilters, PaperFilters, RegionChannelScales

__all__ = [
    'DRConv', 'ModulatedDRConv', 'GeneratedFilterDRConv', 'GENERATORS',
    'MixtureFilters', 'PaperFilters', 'RegionChannelScales'
]
