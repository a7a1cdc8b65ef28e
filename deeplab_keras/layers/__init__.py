"""Shared building blocks of every DeepLab version."""
from deeplab_keras.layers.aspp import aspp, aspp_l, image_pooling
from deeplab_keras.layers.conv import (atrous_conv, atrous_separable_conv, depthwise_conv,
                                       fixed_padding, scope_to_name)
from deeplab_keras.layers.decoder import decoder
from deeplab_keras.layers.rates import aspp_rates, hdc, multi_grid
from deeplab_keras.layers.resize import Resize, resize_class

__all__ = ["Resize", "resize_class", "aspp", "aspp_l", "image_pooling", "atrous_conv",
           "atrous_separable_conv", "depthwise_conv", "fixed_padding", "scope_to_name", "decoder",
           "aspp_rates", "hdc", "multi_grid"]
