"""Op cases for convolution, pooling, normalization and attention (appended to ``CASES``).

Sizes stay tiny: the gradient check differentiates every element by central differences.
"""

from __future__ import annotations

import dataclasses

from tests.engine.op_cases import B, Case, F, I


@dataclasses.dataclass(frozen=True)
class Mask:
    """0/1 attention mask whose first key is always visible (no row is fully masked)."""

    shape: tuple

    def make(self, rng, dtype):
        mask = (rng.random(self.shape) > 0.3).astype(dtype)
        mask[..., 0] = 1
        return mask


CASES: list[Case] = [
    # convolution
    Case("conv2d", (F((2, 2, 5, 5)),), {"filters": 3, "kernel_size": 3}),
    Case("conv2d", (F((2, 2, 6, 7)),), {"filters": 4, "kernel_size": [2, 3], "stride": 2, "padding": 1},
         name="stride-padding"),
    Case("conv2d", (F((1, 2, 5, 6)),), {"filters": 3, "kernel_size": 3, "stride": [2, 1], "padding": "same"},
         name="same-strided"),
    Case("conv2d", (F((1, 2, 4, 5)),), {"filters": 2, "kernel_size": 2, "padding": "same"}, name="same-even-kernel"),
    Case("conv2d", (F((1, 2, 6, 6)),), {"filters": 2, "kernel_size": 3, "dilation": 2, "padding": [2, 1]},
         name="dilation"),
    Case("conv2d", (F((2, 4, 4, 4)),), {"filters": 6, "kernel_size": 3, "groups": 2, "padding": "valid"},
         name="groups"),
    Case("conv2d", (F((2, 3, 4, 4)),), {"filters": 3, "kernel_size": 3, "groups": 3, "use_bias": False,
                                        "padding": 1}, name="depthwise-no-bias"),
    Case("conv2d", (F((2, 3, 3, 3)),), {"filters": 2, "kernel_size": 1}, name="pointwise"),
    # 1x1 with a stride, no padding (a residual projection): the product with the sampled input (conv._pointwise_*)
    Case("conv2d", (F((2, 3, 5, 6)),), {"filters": 4, "kernel_size": 1, "stride": 2}, name="pointwise-strided"),
    Case("conv2d", (F((2, 4, 7, 5)),), {"filters": 3, "kernel_size": 1, "stride": [3, 2], "use_bias": False},
         name="pointwise-strided-uneven-no-bias"),
    Case("conv1d", (F((2, 3, 7)),), {"filters": 2, "kernel_size": 1, "stride": 3}, name="pointwise-strided"),
    # From 4 input channels per group, stride 1: the weight gradient by kernel offsets (conv._weight_product_by_offsets)
    Case("conv2d", (F((2, 4, 5, 6)),), {"filters": 3, "kernel_size": 3, "padding": 1}, name="offsets-weight-grad"),
    Case("conv2d", (F((2, 8, 5, 5)),), {"filters": 4, "kernel_size": [3, 2], "dilation": [1, 2], "groups": 2,
                                        "padding": "same", "use_bias": False}, name="offsets-grouped-dilated"),
    Case("conv2d", (F((1, 5, 4, 4)),), {"filters": 2, "kernel_size": 3, "padding": 3}, name="offsets-over-padded"),
    # From 8 channels per group each way: the forward pass and the input's gradient as products per offset too
    # (conv._correlate_by_offsets, conv._backward_by_offsets: compiled kernels calling BLAS)
    Case("conv2d", (F((2, 8, 5, 6)),), {"filters": 8, "kernel_size": 3, "padding": 1}, name="offset-products"),
    Case("conv2d", (F((2, 16, 5, 5)),), {"filters": 16, "kernel_size": [3, 2], "dilation": [1, 2], "groups": 2,
                                         "padding": "same", "use_bias": False}, name="offset-products-grouped-dilated"),
    Case("conv2d", (F((1, 8, 4, 5)),), {"filters": 9, "kernel_size": 2, "padding": "valid"},
         name="offset-products-even-kernel"),
    # Strided: the padded input split into its stride phases (engine/ops/_offsets.py)
    Case("conv2d", (F((2, 8, 7, 6)),), {"filters": 8, "kernel_size": 3, "stride": 2, "padding": 1},
         name="offset-products-strided"),
    Case("conv2d", (F((1, 8, 9, 8)),), {"filters": 8, "kernel_size": [3, 2], "stride": [3, 2], "dilation": [2, 1],
                                        "padding": [2, 0], "use_bias": False}, name="offset-products-strided-dilated"),
    Case("conv1d", (F((2, 2, 7)),), {"filters": 3, "kernel_size": 3}),
    Case("conv1d", (F((2, 5, 9)),), {"filters": 3, "kernel_size": 3, "dilation": 2, "padding": 1}, name="offsets"),
    Case("conv1d", (F((2, 8, 9)),), {"filters": 8, "kernel_size": 3, "padding": "same"}, name="offset-products"),
    Case("conv1d", (F((2, 4, 9)),), {"filters": 2, "kernel_size": 3, "stride": 2, "padding": "same", "dilation": 2,
                                     "groups": 2, "use_bias": False}, name="strided-dilated-groups"),
    # pooling
    Case("max_pool2d", (F((2, 2, 4, 4)),), {"kernel_size": 2}),
    Case("max_pool2d", (F((2, 2, 5, 5)),), {"kernel_size": 3, "stride": 2, "padding": 1}, name="overlap-padding"),
    Case("max_pool2d", (F((1, 2, 4, 5)),), {"kernel_size": [2, 3], "stride": 1}, name="rectangular-stride1"),
    Case("max_pool2d", (F((1, 2, 5, 5)),), {"kernel_size": 2, "padding": "same"}, name="same"),
    Case("max_pool2d", (F((1, 2, 5, 4)),), {"kernel_size": 2}, name="remainder-row"),  # the last row is in no window
    Case("avg_pool2d", (F((2, 2, 4, 5)),), {"kernel_size": 2}),
    Case("avg_pool2d", (F((2, 2, 5, 5)),), {"kernel_size": 3, "stride": 2, "padding": 1}, name="overlap-padding"),
    Case("avg_pool2d", (F((1, 2, 4, 4)),), {"kernel_size": 3, "stride": 1, "padding": "same"}, name="same"),
    Case("global_avg_pool2d", (F((2, 3, 3, 4)),)),
    Case("upsample2d", (F((2, 2, 3, 2)),)),
    Case("upsample2d", (F((1, 2, 2, 3)),), {"scale_factor": [3, 1]}, name="per-axis"),
    # normalization
    Case("lrn", (F((2, 6, 3, 3)),), {"size": 3, "alpha": 0.3, "beta": 0.75, "bias": 2.0}),
    Case("lrn", (F((1, 4, 2, 3)),), {"size": 5, "alpha": 0.5, "beta": 0.6, "bias": 1.0},
         name="window-past-the-channels"),
    Case("batch_norm", (F((5, 3)),), name="train-features", training=True),
    Case("batch_norm", (F((2, 3, 2, 2)),), {"momentum": 0.2}, name="train-images", training=True),
    Case("batch_norm", (F((2, 3, 4)),), {"affine": False}, name="train-sequence-no-affine", training=True),
    Case("batch_norm", (F((4, 3)),), name="eval"),
    Case("batch_norm", (F((2, 3, 2, 2)),), {"epsilon": 1e-3}, name="eval-images"),
    Case("layer_norm", (F((3, 5)),)),
    Case("layer_norm", (F((2, 3, 4)),), {"axes": 2}, name="two-axes"),
    Case("layer_norm", (F((2, 3, 4)),), {"affine": False, "epsilon": 1e-3}, name="no-affine"),
    # embedding with a padding row
    Case("embedding", (I((4, 3), 5),), {"vocab_size": 5, "dim": 3, "padding_index": 0}, name="padding-index",
         skip_grad=(0,)),
    # attention
    Case("scaled_dot_product_attention", (F((2, 3, 4)), F((2, 4, 4)), F((2, 4, 5)), None)),
    Case("scaled_dot_product_attention", (F((2, 2, 3, 4)), F((2, 2, 3, 4)), F((2, 2, 3, 2)), None),
         {"causal": True}, name="causal-heads"),
    Case("scaled_dot_product_attention", (F((2, 2, 3, 4)), F((2, 1, 4, 4)), F((2, 1, 4, 2)), Mask((2, 1, 3, 4))),
         {"scale": 0.3}, name="mask-broadcast-scale", skip_grad=(3,)),
    Case("scaled_dot_product_attention", (F((2, 3, 2)), F((2, 3, 2)), F((2, 3, 2)), B((3, 3))),
         {"causal": True}, name="mask-and-causal", skip_grad=(3,)),
    Case("multi_head_attention", (F((2, 3, 4)), None, None, None), {"heads": 2}, name="self"),
    Case("multi_head_attention", (F((2, 3, 4)), None, None, None),
         {"heads": 2, "head_dim": 3, "units": 5, "causal": True}, name="causal-head-dim-units"),
    Case("multi_head_attention", (F((2, 3, 4)), F((2, 4, 6)), F((2, 4, 5)), Mask((2, 1, 1, 4))),
         {"heads": 2, "use_bias": False}, name="cross-mask-no-bias", skip_grad=(3,)),
    Case("multi_head_attention", (F((2, 3, 4)), F((2, 4, 6)), None, None), {"heads": 1}, name="value-is-key"),
]
