"""``handgrad export``: write a trained model as an ONNX file."""
from __future__ import annotations


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("export", help="write a trained model as ONNX",
                              description="Export a trained model (a run directory, model.npz or checkpoint.npz) "
                                          "to ONNX, in eval mode, with a symbolic batch dimension. The graph's "
                                          "output is 'logits'; class names and input scaling are in its metadata.")
    p.add_argument("--checkpoint", required=True, metavar="RUN_DIR_OR_FILE", help="run directory or model/checkpoint file")
    p.add_argument("--out", required=True, metavar="FILE.onnx", help="where to write the ONNX model")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..export import export_onnx, input_dims
    from ..train.restore import load_trained

    model, metadata = load_trained(args.checkpoint)
    input_shape = metadata.get("input_shape") or model.input_shape
    try:
        path = export_onnx(model, input_shape, args.out, metadata)
    except ValueError as exc:  # the model or its metadata: name the file they came from
        raise ValueError(f"{args.checkpoint}: {exc}") from None
    print(f"wrote {path} (input shape ({', '.join(map(str, input_dims(model, input_shape)))}))")
    return 0
