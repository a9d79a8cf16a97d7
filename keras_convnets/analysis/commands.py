"""The `visualize` and `stylize` subcommands of `keras-convnets`.

Only argparse at import time, so `keras-convnets --help` stays fast;
TensorFlow and matplotlib are imported when a command runs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from keras_convnets.cli_common import int_at_least, non_negative_float, sizes
from keras_convnets.errors import UNSAFE_HELP

WHATS = (
    "filters",
    "feature-maps",
    "top-patches",
    "activation-max",
    "saliency",
    "grad-cam",
    "pool-focus",
)

VISUALIZE_EXAMPLES = """examples:
  keras-convnets visualize saved_models/RUN --what filters
  keras-convnets visualize saved_models/RUN --what feature-maps --layer stage1_conv1_relu
  keras-convnets visualize saved_models/RUN --what top-patches --layer stage2_conv1 --unit 5
  keras-convnets visualize saved_models/RUN --what saliency --images shoe.png shirt.png
  keras-convnets visualize saved_models/RUN --what grad-cam --class Sneaker --tensorboard
  keras-convnets visualize saved_models/RUN --what activation-max --layer stage2_conv1
  keras-convnets visualize saved_models/RUN --what pool-focus --layer stage1_pool

Figures land in --out (default RUN/analysis) as PNGs named after what, layer
and unit; --tensorboard also logs them to RUN/logs/analysis."""

STYLIZE_EXAMPLES = """examples:
  keras-convnets stylize content.png style.png --backbone saved_models/RUN --out out.png
  keras-convnets stylize photo.jpg starry.jpg --backbone vgg19 --size 384 --steps 500
  keras-convnets stylize a.png b.png --backbone saved_models/RUN --size 64 \\
      --style-layers stage1_conv1,stage2_conv1 --style-weight 100 --save-every 50

Losses are relative to their targets (see keras_convnets.analysis.StyleLoss),
so the weights mean the same on any backbone. vgg19 needs the ImageNet weights
(downloaded once when online); a model trained here works offline."""


def _units(text):
    try:
        values = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(
            f"expected K or K1,K2,... (integers >= 0), got {text!r}"
        )
    return values


def _size(text):
    parts = sizes(text, (1, 2), "N (longest side) or H,W")
    return parts[0] if len(parts) == 1 else parts


def add_parsers(subparsers, formatter) -> None:
    """Adds `visualize` and `stylize` to the `keras-convnets` subcommands."""
    _add_visualize(subparsers, formatter)
    _add_stylize(subparsers, formatter)


def _add_visualize(subparsers, formatter):
    p = subparsers.add_parser(
        "visualize",
        help="filters, feature maps, top patches, saliency, Grad-CAM, ... as PNGs",
        description="Look inside a saved model: draw one kind of figure as a "
        "labelled PNG grid.\n\n"
        "  filters         kernels of a conv layer (default: the first)\n"
        "  feature-maps    a layer's activations for some images\n"
        "  top-patches     the k image patches of a split that most activate a\n"
        "                  unit, cropped to the unit's receptive field\n"
        "  activation-max  inputs maximizing units (--layer) or classes, by\n"
        "                  gradient ascent with jitter and blur\n"
        "  saliency        |gradient of the class score| per pixel\n"
        "  grad-cam        Grad-CAM heat map of a conv layer (default: the last)\n"
        "  pool-focus      where the gradient goes through a max-pool: the\n"
        "                  arg-max of each window",
        epilog=VISUALIZE_EXAMPLES,
        formatter_class=formatter,
    )
    p.add_argument("path", help="run directory or .keras file")
    g = p.add_argument_group("what to draw")
    g.add_argument(
        "--what", choices=WHATS, required=True, metavar="WHAT", help=", ".join(WHATS)
    )
    g.add_argument(
        "--layer", metavar="NAME", help="layer name (default depends on WHAT)"
    )
    g.add_argument(
        "--unit", type=_units, metavar="K[,K...]", help="unit/channel index(es)"
    )
    g.add_argument(
        "--class",
        dest="class_",
        metavar="C",
        help="class index or name (default: the predicted class)",
    )
    g = p.add_argument_group("images")
    g.add_argument(
        "--images", nargs="+", metavar="FILE", help="PNG/JPEG files (resized to fit)"
    )
    g.add_argument("--dataset", help="dataset (default: the run's own)")
    g.add_argument("--split", choices=("test", "validation", "train"), default="test")
    g.add_argument("--data-dir", help="folder with IDX files")
    g.add_argument("--tfds-data-dir", help="TensorFlow Datasets data folder")
    g.add_argument(
        "--num-images",
        type=int_at_least(1),
        default=4,
        metavar="N",
        help="dataset images to show (default 4)",
    )
    g.add_argument(
        "-k",
        "--top",
        type=int_at_least(1),
        default=9,
        dest="k",
        help="top patches (default 9)",
    )
    g.add_argument(
        "--max-images",
        type=int_at_least(1),
        metavar="N",
        help="images scanned for top patches (default: the whole split)",
    )
    g = p.add_argument_group("activation maximization")
    g.add_argument("--steps", type=int_at_least(1), default=150)
    g.add_argument("--seed", type=int_at_least(0), default=0)
    g = p.add_argument_group("output")
    g.add_argument(
        "--out", metavar="DIR", help="folder of the PNGs (default RUN/analysis)"
    )
    g.add_argument(
        "--tensorboard",
        action="store_true",
        help="also log the figure to RUN/logs/analysis",
    )
    p.add_argument("--unsafe", action="store_true", help=UNSAFE_HELP)
    p.set_defaults(func=_cmd_visualize)


def _default_out(path):
    run_dir = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    if os.path.isfile(os.path.join(run_dir, "run.json")):
        return os.path.join(run_dir, "analysis")
    return "analysis"


def _cmd_visualize(args) -> int:
    from keras_convnets.analysis.report import visualize

    result = visualize(
        args.path,
        args.what,
        args.out or _default_out(args.path),
        layer=args.layer,
        units=args.unit,
        class_=args.class_,
        images=args.images,
        dataset=args.dataset,
        split=args.split,
        data_dir=args.data_dir,
        tfds_data_dir=args.tfds_data_dir,
        num_images=args.num_images,
        k=args.k,
        max_images=args.max_images,
        steps=args.steps,
        seed=args.seed,
        tensorboard=args.tensorboard,
        unsafe=args.unsafe,
    )
    for line in result["summary"]:
        print(line)
    layer = f" of {result['layer']}" if result["layer"] else ""
    print(f"Wrote {args.what}{layer}: {result['png']}")
    if result["tensorboard"]:
        print(f"TensorBoard:   tensorboard --logdir {result['tensorboard']}")
    return 0


def _add_stylize(subparsers, formatter):
    p = subparsers.add_parser(
        "stylize",
        help="neural style transfer (Gatys et al.) with VGG19 or a trained model",
        description="Render CONTENT in the style of STYLE: gradient descent on the "
        "pixels to match the content image's features at one layer and the "
        "style image's Gram matrices at several (Gatys, Ecker and Bethge 2016).",
        epilog=STYLIZE_EXAMPLES,
        formatter_class=formatter,
    )
    p.add_argument("content", help="content image (PNG/JPEG, any size and channels)")
    p.add_argument("style", help="style image")
    g = p.add_argument_group("network")
    g.add_argument(
        "--backbone",
        default="vgg19",
        metavar="vgg19|PATH",
        help="vgg19 (ImageNet weights) or a run directory / .keras file "
        "(default vgg19)",
    )
    g.add_argument(
        "--content-layer",
        metavar="NAME",
        help="default: block5_conv2 (vgg19), else the last conv layer",
    )
    g.add_argument(
        "--style-layers",
        metavar="NAME,...",
        help="default: block1..5_conv1 (vgg19), else all conv layers",
    )
    g = p.add_argument_group("loss")
    g.add_argument("--content-weight", type=non_negative_float, default=1.0)
    g.add_argument("--style-weight", type=non_negative_float, default=10.0)
    g.add_argument("--tv-weight", type=non_negative_float, default=1.0)
    g = p.add_argument_group("optimization")
    g.add_argument("--steps", type=int_at_least(0), default=200)
    g.add_argument("--learning-rate", "--lr", type=non_negative_float, default=0.02)
    g.add_argument(
        "--size",
        type=_size,
        metavar="N|H,W",
        help="output size: longest side N, or H,W (default: the backbone's input "
        "size, else the content's up to 512)",
    )
    g.add_argument("--init", choices=("content", "style", "noise"), default="content")
    g.add_argument("--seed", type=int_at_least(0), default=0)
    g = p.add_argument_group("output")
    g.add_argument(
        "--out",
        default="stylized.png",
        metavar="FILE.png",
        help="(default stylized.png)",
    )
    g.add_argument(
        "--save-every",
        type=int_at_least(1),
        metavar="N",
        help="also write FILE_stepN.png every N steps",
    )
    g.add_argument(
        "--log-every",
        type=int_at_least(1),
        metavar="N",
        help="progress line every N steps (default: 10 lines in all)",
    )
    g.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--unsafe", action="store_true", help=UNSAFE_HELP)
    p.set_defaults(func=_cmd_stylize)


def _cmd_stylize(args) -> int:
    from keras_convnets.analysis._common import write_image
    from keras_convnets.analysis.style_transfer import style_transfer
    from keras_convnets.errors import UserInputError

    if not args.out.lower().endswith(".png"):
        raise UserInputError(f"--out must be a .png file. Received: --out {args.out}")
    for image in (args.content, args.style):
        if not os.path.isfile(image):
            raise UserInputError(f"Image not found: {image}")
    style_layers = (
        [s.strip() for s in args.style_layers.split(",") if s.strip()]
        if args.style_layers
        else None
    )
    log_every = args.log_every or max(1, args.steps // 10)
    stem = args.out[: -len(".png")]
    start = time.perf_counter()

    def progress(step, losses, image):
        if not args.quiet and (step % log_every == 0 or step == args.steps):
            print(
                f"step {step:>5}/{args.steps}  total {losses['total']:.4g}  "
                f"content {losses['content']:.4g}  style {losses['style']:.4g}  "
                f"tv {losses['tv']:.4g}",
                flush=True,
            )
        if args.save_every and step % args.save_every == 0 and 0 < step < args.steps:
            write_image(f"{stem}_step{step}.png", image)

    image, history = style_transfer(
        args.backbone,
        args.content,
        args.style,
        content_layer=args.content_layer,
        style_layers=style_layers,
        content_weight=args.content_weight,
        style_weight=args.style_weight,
        tv_weight=args.tv_weight,
        steps=args.steps,
        learning_rate=args.learning_rate,
        size=args.size,
        init=args.init,
        seed=args.seed,
        callback=progress,
        unsafe=args.unsafe,
    )
    write_image(args.out, image)
    height, width, channels = image.shape
    print(
        f"Wrote {args.out} ({height}x{width}, {channels} channel"
        f"{'s' if channels > 1 else ''}); loss {history['total'][0]:.4g} -> "
        f"{history['total'][-1]:.4g} in {time.perf_counter() - start:.0f} s",
        file=sys.stdout,
    )
    return 0
