"""Ready-made models, each written once for 1-D, 2-D and 3-D data (``ndim``)."""
from .classifier import Classifier, conv_block, default_groups, norm_layer, residual_block
from .encoder_decoder import EncoderDecoder
from .labeller import StructuredLabeller

__all__ = ["Classifier", "EncoderDecoder", "StructuredLabeller", "conv_block", "residual_block",
           "norm_layer", "default_groups"]
