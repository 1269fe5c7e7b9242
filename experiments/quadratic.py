"""The assignment's 2-3-2 sigmoid network on the quadratic-rule data set, trained by
per-sample SGD (batch 1), with its loss curve and decision boundary:

    python experiments/quadratic.py --out runs/quadratic

The data (``load_dataset("quadratic")``, see ``handgrad.data.synth``): x ~ N(0, I_2),
label [x^T Q x > 0.6] with Q = [[1, 0.5], [1, 0.2]]; 60,000 training points (10% held
out for validation) and 10,000 test points. The network: 2 inputs -> 3 sigmoid units
-> 2 logits, softmax cross-entropy, plain SGD (momentum 0), one sample per step.

DIR receives the run directory of ``handgrad train`` (config, model, metrics,
report.html), ``loss.png`` (the per-step loss, smoothed) and ``decision_boundary.png``
(the test points, the classes the network assigns over the plane and the true
boundary dashed). ``--epochs``, ``--lr``, ``--data-fraction`` and ``--seed`` change the
run; a smoke test uses ``--epochs 1 --data-fraction 0.05``.
"""
import argparse

from handgrad import plots
from handgrad.data import load_dataset
from handgrad.data.synth import QUADRATIC_Q, QUADRATIC_THRESHOLD
from handgrad.train import predict, train_from_config
from handgrad.train.restore import load_trained

CONFIG = {
    "data": "quadratic",
    "model": "mlp",
    "model_kwargs": {"hidden": [3], "activation": "sigmoid"},
    "batch_size": 1,
    "optimizer": "sgd",
    "momentum": 0.0,
    "lr": 0.1,
    "lr_decay": 1.0,
    "loss_reduction": "mean",
    "epochs": 5,
}


def true_boundary(x1, x2):
    """x^T Q x - 0.6: positive on class 1, zero on the boundary."""
    (a, b), (c, d) = QUADRATIC_Q
    return a * x1 * x1 + (b + c) * x1 * x2 + d * x2 * x2 - QUADRATIC_THRESHOLD


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="directory for the run and the figures")
    parser.add_argument("--epochs", type=int, default=CONFIG["epochs"])
    parser.add_argument("--lr", type=float, default=CONFIG["lr"])
    parser.add_argument("--data-fraction", type=float, default=1.0, help="train on this fraction of the 60,000 points")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    config = {**CONFIG, "epochs": args.epochs, "lr": args.lr, "data_fraction": args.data_fraction, "seed": args.seed}
    result = train_from_config(config, out_dir=args.out)
    model, _ = load_trained(args.out)
    X, y = load_dataset("quadratic", seed=args.seed).test
    majority = max(y.mean(), 1 - y.mean())
    plots.plot_loss(result["history"], smoothing=0.999, path=f"{args.out}/loss.png",
                    title="2-3-2 sigmoid network, per-sample SGD: training loss")
    plots.plot_decision_boundary(lambda points: predict(model, points.astype(X.dtype)), X, y, boundary=true_boundary,
                                 class_names=["x'Qx <= 0.6", "x'Qx > 0.6"], path=f"{args.out}/decision_boundary.png",
                                 title=f"Test set, accuracy {result['test_accuracy']:.4f}")
    print(f"test accuracy {result['test_accuracy']:.4f} (majority class {majority:.4f}); "
          f"figures in {args.out}/loss.png and {args.out}/decision_boundary.png")


if __name__ == "__main__":
    main()
