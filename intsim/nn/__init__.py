"""intsim.nn: a small forward/backward layer engine (no autograd), NCHW, float32 master weights.

Every weight matmul goes through intsim.core.linear_op (or a float fast path when the layer's
numerics is float); see intsim/nn/module.py for the Module contract.
"""
from intsim.nn.activation import Flatten, Identity, ReLU
from intsim.nn.container import Sequential
from intsim.nn.conv import Conv2d, col2im, im2col
from intsim.nn.gradcheck import gradcheck
from intsim.nn.linear import Linear, MatmulModule, kaiming_normal, torch_default_uniform
from intsim.nn.module import Module, child_seed
from intsim.nn.norm import BatchNorm1d, BatchNorm2d
from intsim.nn.pool import AvgPool2d, GlobalAvgPool, MaxPool2d
from intsim.nn.resnet_block import BasicBlock, ShortcutA

__all__ = [
    "Module", "MatmulModule", "child_seed", "kaiming_normal", "torch_default_uniform",
    "Linear", "Conv2d", "im2col", "col2im",
    "ReLU", "Identity", "Flatten",
    "BatchNorm1d", "BatchNorm2d",
    "AvgPool2d", "MaxPool2d", "GlobalAvgPool",
    "Sequential", "BasicBlock", "ShortcutA",
    "gradcheck",
]
