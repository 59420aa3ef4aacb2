"""Layers, losses and initialisation: a model is written once and runs on 1-D, 2-D or 3-D data.

Names follow ``torch.nn``; layers with kernels take ``ndim`` (spatial axes),
every other layer works for any rank.  See ``docs/nn.md``.
"""
from . import functional, init
from .activation import GELU, LeakyReLU, ReLU, SiLU, Sigmoid, Softmax, Tanh
from .conv import Conv, ConvTranspose, LocalConv, TiledConv
from .linear import Dropout, Flatten, Identity, Linear, Upsample
from .losses import CrossEntropyLoss, DiceLoss, MSELoss
from .module import Module, ModuleList, Parameter, Sequential
from .normalization import BatchNorm, GroupNorm, InstanceNorm, LayerNorm
from .pooling import AdaptivePool, AvgPool, GaussianPool, GlobalPool, LPPool, Maxout, MaxPool
from .residual import Residual

__all__ = [
    "functional", "init",
    "Module", "Parameter", "Sequential", "ModuleList",
    "Conv", "ConvTranspose", "LocalConv", "TiledConv",
    "MaxPool", "AvgPool", "LPPool", "GaussianPool", "GlobalPool", "AdaptivePool", "Maxout",
    "BatchNorm", "GroupNorm", "InstanceNorm", "LayerNorm",
    "ReLU", "LeakyReLU", "Tanh", "Sigmoid", "GELU", "SiLU", "Softmax",
    "Residual",
    "Linear", "Flatten", "Dropout", "Upsample", "Identity",
    "CrossEntropyLoss", "MSELoss", "DiceLoss",
]
