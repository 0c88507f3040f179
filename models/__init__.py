"""intsim.models: networks built from intsim.nn."""
from .networks import (CifarResNet, FCNet, IncrementalHead, IncrementalNet, SmallCNN,
                       resnet32)

__all__ = ["FCNet", "CifarResNet", "resnet32", "SmallCNN", "IncrementalHead", "IncrementalNet"]
