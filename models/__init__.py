"""intsim.models: networks built from intsim.nn."""
from intsim.models.networks import (CifarResNet, FCNet, IncrementalHead, IncrementalNet, SmallCNN,
                       resnet32)

__all__ = ["FCNet", "CifarResNet", "resnet32", "SmallCNN", "IncrementalHead", "IncrementalNet"]
