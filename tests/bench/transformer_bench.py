"""A pre-norm transformer encoder layer's training steps, the engine against PyTorch CPU, in the
table of ``rnn_bench`` (same processes, trials, CPU-time ratio and memory measure; see there).

The model: sequences of 32 steps of 64 features; x + attention(layer_norm(x)) with 4 heads, then
h + dense 64(gelu(dense 256(layer_norm(h)))); the mean over the steps into a dense layer of 10,
softmax cross-entropy; PyTorch's side is ``nn.TransformerEncoderLayer(norm_first=True,
activation="gelu", dropout=0)``, the same maths (exact GELU, epsilon 1e-5).
"""

from __future__ import annotations

import sys

from tests.bench.rnn_bench import CLASSES, command_line

LENGTH, WIDTH, HEADS, HIDDEN = 32, 64, 4, 256


def encoder_engine(g, x):
    h = g.add(x, g.multi_head_attention(g.layer_norm(x), heads=HEADS))
    mlp = g.dense(g.gelu(g.dense(g.layer_norm(h), units=HIDDEN)), units=WIDTH)
    return g.dense(g.mean(g.add(h, mlp), axis=1), units=CLASSES)


def encoder_torch():
    import torch  # noqa: PLC0415 - PyTorch is for make bench only

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = torch.nn.TransformerEncoderLayer(WIDTH, HEADS, HIDDEN, dropout=0.0, activation="gelu",
                                                            batch_first=True, norm_first=True)
            self.head = torch.nn.Linear(WIDTH, CLASSES)

        def forward(self, x):
            return self.head(self.encoder(x).mean(dim=1))

    return Net()


MODELS = {"transformer": (f"pre-norm encoder {LENGTH}x{WIDTH}, {HEADS} heads, MLP {HIDDEN}", (LENGTH, WIDTH),
                          encoder_engine, encoder_torch)}


if __name__ == "__main__":
    sys.exit(command_line("tests.bench.transformer_bench", "a pre-norm transformer encoder layer"))
