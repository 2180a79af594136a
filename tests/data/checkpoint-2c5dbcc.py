"""How checkpoint-2c5dbcc.npz and checkpoint-2c5dbcc-expected.npz were made, with deepnum at 2c5dbcc (before the
model/training split; run from the repository root, on a 2-core Intel Xeon VM whose kernels ran at the SIMD
level avx512). Not run by the tests, which resume the checkpoint with the
code of today and compare against the expected file: a checkpoint after 2 of 3 epochs, and what training all 3
epochs in one go gives."""
import numpy as np
from deepnum import models, nn
from deepnum.optim import SGD, Adam

rng = np.random.default_rng(0)
x = rng.standard_normal((64, 6)).astype(np.float32)
y = (x[:, 0] + x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 1)
valid = (x[:16], y[:16])

def build():
    return models.Sequential([nn.Dense(6, 5, "tanh", p_dropout=0.1), nn.Dense(5, 3), nn.SoftmaxNLL()], seed=3)

def fit(model, epochs, checkpoint=None):
    return model.fit((x, y), epochs, 8, SGD(0.1, momentum=0.9), validation=valid, patience=40, shuffle=True,
                     checkpoint=checkpoint)

import os
out = "tests/data"
p = f"{out}/checkpoint-2c5dbcc.npz"
if os.path.exists(p): os.remove(p)
fit(build(), 2, checkpoint=p)
full = build(); h = fit(full, 3)
np.savez(f"{out}/checkpoint-2c5dbcc-expected.npz", **full.state_dict(), best_valid_error=h["best_valid_error"],
         best_iteration=h["best_iteration"], train_loss=np.array(h["train_loss"]))
print(h)
