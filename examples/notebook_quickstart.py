"""A notebook session with intsim, as a script: data, a quantized model, fit, evaluate, trace.

    python examples/notebook_quickstart.py [--epochs 20]

Every block below is a notebook cell. It trains FCNet (the paper's HAR network, in→in→in) with
HDQT numerics on the real smartwatch recordings (installed offline by `pip install seglearn`),
compares it with fp32, and looks at where the 8-bit accumulators saturated.
"""
import argparse

import numpy as np

import intsim
from intsim.datasets import load_dataset, minmax_preprocess
from intsim.models import FCNet, IncrementalNet

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=20)
args = parser.parse_args()

# --- data: 54 features per window, 7 exercises; two subjects held out -------------------------
ds = load_dataset("watch")
test = np.isin(ds.subject, [9, 10])
X_train, X_test = minmax_preprocess()(ds.X[~test], ds.X[test])
y_train, y_test = ds.y[~test], ds.y[test]
print(f"{len(y_train)} training and {len(y_test)} test windows, {X_train.shape[1]} features")


# --- a model with a numerics: every weight matmul runs through the integer datapath ----------
def build(numerics: str, seed: int = 0) -> IncrementalNet:
    nm = intsim.preset(numerics)
    backbone = FCNet(X_train.shape[1], 54, 54, numerics=nm, seed=seed)
    return IncrementalNet(backbone, len(ds.class_names), numerics=nm, seed=seed + 1)


# --- fit and evaluate ---------------------------------------------------------------------------
results = {}
for numerics in ("fp32", "hdqt"):
    model = build(numerics)
    trace = intsim.Trace()                  # stamped with the training step by fit()
    history = intsim.fit(model, X_train, y_train, epochs=args.epochs, batch_size=64, lr=0.05,
                         trace=trace, trace_every=10, validation=(X_test, y_test))
    frame = history.to_frame()
    print(f"\n{numerics}: last epoch loss {frame['loss'].iloc[-1]:.3f}, train accuracy "
          f"{frame['train_accuracy'].iloc[-1]:.1f} %, test accuracy "
          f"{frame['val_accuracy'].iloc[-1]:.1f} %")
    results[numerics] = (intsim.evaluate(model, X_test, y_test, batch_size=64), trace)

# --- where did the accumulators saturate? ------------------------------------------------------
_, trace = results["hdqt"]
matmuls = trace.to_frame("matmul")        # one row per traced integer matmul
per_layer = matmuls.groupby("label")[["events", "macs", "outputs_affected", "outputs"]].sum()
per_layer["event_rate"] = per_layer["events"] / per_layer["macs"]
print("\nhdqt saturation events per layer and product (traced steps):")
print(per_layer[["events", "event_rate"]].to_string())
print(f"\ntest accuracy: fp32 {results['fp32'][0]['accuracy']:.1f} %, "
      f"hdqt {results['hdqt'][0]['accuracy']:.1f} %")
