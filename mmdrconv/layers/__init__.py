from .drconv import (GENERATORS, ChannelModulation, DRConv, MixtureFilters,
                     PaperFilters)

__all__ = ['DRConv', 'GENERATORS', 'MixtureFilters', 'PaperFilters',
           'ChannelModulation']
