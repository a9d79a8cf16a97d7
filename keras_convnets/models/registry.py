"""A registry of model builders, in the style of timm's `@register_model`.

Every architecture is a builder function `fn(input_shape, num_classes, **kwargs)`
returning a `keras.Model`; variants are registered argument sets of a builder.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
from collections.abc import Callable

import keras

from keras_convnets.errors import UserInputError


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """One registered model: its builder, fixed arguments and a description."""

    name: str
    builder: Callable[..., keras.Model]
    defaults: dict
    description: str
    default_input_shape: tuple | None = None

    def build(self, input_shape, num_classes, **kwargs) -> keras.Model:
        arguments = {**self.defaults, **kwargs}
        return self.builder(tuple(input_shape), int(num_classes), **arguments)


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    fn: Callable | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    default_input_shape: tuple | None = None,
    **defaults,
):
    """Registers a model builder under a name, optionally with fixed arguments.

    Usable as a bare decorator or as a call that registers a variant:

    ```python
    @register_model(description="Two conv + pool stages.")
    def simple_cnn(input_shape, num_classes, filters=(32, 64)): ...

    register_model(simple_cnn, name="simple_cnn_wide", filters=(64, 128))
    ```

    Args:
        fn: callable. The builder `fn(input_shape, num_classes, **kwargs)`.
        name: str. Registry name. Defaults to `fn.__name__`.
        description: str. One line for `keras-convnets models`. Defaults to the
            first line of the builder's docstring.
        default_input_shape: tuple. The input shape the architecture is usually
            built at (e.g. `(224, 224, 3)`), for listings.
        **defaults: keyword arguments fixed for this variant.

    Returns:
        The builder, unchanged (so the decorator can be stacked).
    """

    def decorate(builder):
        key = name or builder.__name__
        if key in _REGISTRY:
            raise ValueError(f"A model named {key!r} is already registered.")
        doc = description or (builder.__doc__ or "").strip().split("\n")[0]
        _REGISTRY[key] = ModelEntry(
            key, builder, dict(defaults), doc, default_input_shape
        )
        return builder

    if fn is None:
        return decorate
    return decorate(fn)


def _ensure_loaded():
    # Importing the model modules registers their builders.
    import keras_convnets.models  # noqa: F401


def list_models() -> list[str]:
    """Returns the sorted names of all registered models."""
    _ensure_loaded()
    return sorted(_REGISTRY)


def get_model_entry(name: str) -> ModelEntry:
    """Returns the registry entry of `name`, or raises a `UserInputError`."""
    _ensure_loaded()
    if name not in _REGISTRY:
        close = [m for m in _REGISTRY if name.lower() in m or m in name.lower()]
        hint = f" Did you mean: {', '.join(close[:5])}?" if close else ""
        raise UserInputError(
            f"Unknown model {name!r}.{hint} Run `keras-convnets models` to list "
            f"all {len(_REGISTRY)} models. Received: name={name!r}"
        )
    return _REGISTRY[name]


def get_model(
    name: str, input_shape, num_classes: int, weights=None, **kwargs
) -> keras.Model:
    """Builds a registered model.

    Args:
        name: str. A name from `list_models()`.
        input_shape: tuple. `(height, width, channels)` of one image.
        num_classes: int. Number of output classes (softmax outputs).
        weights: None, `"imagenet"` or the path of a `.h5`/`.weights.h5` file
            saved from the model's `keras.applications` twin. Only for the
            models of `keras_convnets.models.pretrained.pretrained_models()`
            (ResNet50/101/152 and V2s, VGG16/19, MobileNet,
            InceptionResNetV2), with 3 channels. With another number of
            classes than the weights have, the classifier stays freshly
            initialized. The model then computes the twin's function: feed
            it what the twin's `preprocess_input` makes. Defaults to None
            (random initialization).
        **kwargs: builder arguments overriding the variant's defaults.

    Returns:
        A `keras.Model`.

    Example:

    ```python
    model = keras_convnets.get_model("simple_cnn", (28, 28, 1), 10)
    resnet = keras_convnets.get_model("resnet50", (224, 224, 3), 1000,
                                      weights="imagenet")
    ```
    """
    model = _build(name, input_shape, num_classes, kwargs, weights)
    if weights is not None:
        from keras_convnets.models.pretrained import load_pretrained

        twin_kwargs = {k: kwargs[k] for k in ("alpha",) if k in kwargs}
        load_pretrained(model, name, weights, **twin_kwargs)
    return model


def _build(name, input_shape, num_classes, kwargs, weights):
    entry = get_model_entry(name)
    if len(tuple(input_shape)) != 3 or any(int(d) <= 0 for d in input_shape):
        raise UserInputError(
            f"input_shape must be (height, width, channels) with positive sizes. "
            f"Received: input_shape={tuple(input_shape)}"
        )
    if int(num_classes) < 2:
        raise UserInputError(
            f"num_classes must be at least 2. Received: num_classes={num_classes}"
        )
    if weights is not None:
        from keras_convnets.models.pretrained import get_twin

        get_twin(name)  # a clear error before building
        if int(tuple(input_shape)[-1]) != 3:
            raise UserInputError(
                f"{name}: pretrained weights need RGB inputs (3 channels). "
                f"Received: input_shape={tuple(input_shape)}"
            )
    if not kwargs:
        return entry.build(input_shape, num_classes)
    _check_kwargs(entry, kwargs)
    try:
        return entry.build(input_shape, num_classes, **kwargs)
    except UserInputError:
        raise
    except (TypeError, ValueError, OverflowError) as e:
        # The builder's defaults build (the tests build every model); a
        # failure with extra arguments is about those arguments.
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UserInputError(
            f"Cannot build {name!r} with model arguments {_short_repr(kwargs)}: "
            f"{first[:300]}"
        ) from None


def _short_repr(value) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:200] + "..."


def check_model_kwargs(name: str, kwargs: dict) -> None:
    """Raises `UserInputError` for an unknown model or an argument its builder lacks.

    Cheap (nothing is built), so callers can check `--model-kwargs` before
    loading data.
    """
    _check_kwargs(get_model_entry(name), kwargs)


def _check_kwargs(entry: ModelEntry, kwargs: dict) -> None:
    """Raises `UserInputError` for an argument the builder does not take."""
    parameters = inspect.signature(entry.builder).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    accepted = [
        p
        for p, spec in parameters.items()
        if spec.kind in (spec.POSITIONAL_OR_KEYWORD, spec.KEYWORD_ONLY)
    ][2:]  # after input_shape and num_classes
    unknown = [k for k in kwargs if k not in accepted]
    if unknown:
        close = difflib.get_close_matches(str(unknown[0]), accepted, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UserInputError(
            f"Model {entry.name!r} takes no argument {_short_repr(unknown[0])}{hint}; "
            f"it takes: {', '.join(accepted) or 'none'}."
        )
