"""One command-line flag per TrainConfig field, generated from the dataclass, and back.

:func:`add_config_flags` adds the flags to a parser; :func:`iwae_lib.config.config_flags`
writes the flags that reproduce a given TrainConfig (the inverse, used by ``python -m
iwae_lib runs``).
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing

from iwae_lib.config import TrainConfig, flag_name, nested_sizes

FIELD_HELP = {
    "dataset": "data set: mnist (dynamically binarized), binarized_mnist (Larochelle's) or omniglot",
    "n_stochastic": "stochastic layers of the paper's architecture (1 or 2)",
    "latent_sizes": "sizes of h_1..h_L, e.g. '100 50'; None: the paper's for --n-stochastic",
    "hidden_sizes": "hidden tanh layers per stochastic layer, e.g. '200,200 100,100'; None: the paper's",
    "likelihood": "p(x | h): bernoulli (binary pixels), or discretized_logistic (8-bit gray levels of mnist)",
    "objective": "training bound: vae, iwae, miwae, ciwae, or piwae (IWAE for the decoder, --piwae-encoder's bound "
                 "for the encoder)",
    "k": "importance samples per image during training",
    "estimator": "gradient estimator: standard, stl or dreg (dreg: iwae only)",
    "miwae_groups": "MIWAE: number of groups the k samples are split into",
    "ciwae_beta": "CIWAE: weight beta of the ELBO in beta*ELBO + (1-beta)*IWAE",
    "piwae_encoder": "PIWAE: the inference network's bound, miwae (with --miwae-groups), ciwae (with --ciwae-beta) or vae",
    "batch_size": "images per optimisation step",
    "schedule": "learning-rate schedule: paper (3280 epochs), scaled (paper stages scaled to --epochs), constant",
    "epochs": "training epochs ('none' with --schedule paper, which is the default there)",
    "learning_rate": "base learning rate (stage i of the paper schedule uses rate * 10^(-i/7))",
    "beta1": "Adam beta1",
    "beta2": "Adam beta2",
    "epsilon": "Adam epsilon",
    "adam_v_init": "initial value of Adam's second moments (0: Kingma & Ba)",
    "seed": "seed of the initialisation, data order and samples",
    "train_size": "use only the first N training images ('none': all)",
    "validation_size": "images held out of the training set for validation (0: none)",
    "patience": "early stopping after this many evaluations without validation improvement",
    "eval_every": "epochs between held-out bound evaluations (0: never)",
    "eval_size": "held-out images used for those evaluations (test images spread evenly over the file)",
    "final_k": "samples per image of the final log-likelihood estimate",
    "final_test_size": "test images of the final estimate ('none': all)",
    "final_train_size": "training images of the final train log-likelihood",
    "steps_per_call": "optimisation steps per compiled call",
    "precision": "float32, or bfloat16 (bf16 matrix products; fp32 parameters, Adam state and bounds)",
    "checkpoint_seconds": "seconds between checkpoints within an epoch (also written at stage ends)",
}


def _split_optional(hint):
    """(base type, optional?) of a type hint such as ``int | None``."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = len(args) < len(typing.get_args(hint))
        base = args[0] if len(args) == 1 else str
        return (typing.get_origin(base) or base), optional
    return (typing.get_origin(hint) or hint), False


def _is_none_word(text: str) -> bool:
    return text.strip().lower() in ("none", "all", "null")


def _number_parser(base, optional: bool, field_name: str):
    def parse(text):
        if optional and _is_none_word(text):
            return None
        try:
            return base(text)
        except ValueError:
            kind = "an integer" if base is int else "a number"
            extra = " or 'none'" if optional else ""
            raise argparse.ArgumentTypeError(f"expected {kind}{extra}, got {text!r}") from None

    parse.__name__ = field_name
    return parse


def _sizes_parser(nested: bool, field_name: str):
    def parse(text):
        try:
            sizes = tuple(int(part) for part in text.split(",") if part.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected integers separated by commas, got {text!r}") from None
        if not sizes:
            raise argparse.ArgumentTypeError(f"expected at least one integer, got {text!r}")
        if nested:
            return sizes
        if len(sizes) != 1:
            raise argparse.ArgumentTypeError(f"expected one integer per value (separate them by spaces), got {text!r}")
        return sizes[0]

    parse.__name__ = field_name
    return parse


def add_config_flags(parser: argparse.ArgumentParser):
    """One flag per TrainConfig field. Unset flags stay absent from the parsed namespace."""
    hints = typing.get_type_hints(TrainConfig)
    group = parser.add_argument_group("training options (TrainConfig fields)")
    for field in dataclasses.fields(TrainConfig):
        base, optional = _split_optional(hints[field.name])
        default = field.default
        help_text = f"{FIELD_HELP.get(field.name, field.name.replace('_', ' '))} (default: {default})"
        common = {"dest": field.name, "default": argparse.SUPPRESS, "help": help_text}
        if base is bool:
            group.add_argument(flag_name(field.name), action=argparse.BooleanOptionalAction, **common)
        elif base in (int, float):
            group.add_argument(flag_name(field.name), type=_number_parser(base, optional, field.name),
                               metavar="N" if base is int else "X", **common)
        elif base in (tuple, list):
            nested = nested_sizes(field.name)
            group.add_argument(flag_name(field.name), type=_sizes_parser(nested, field.name), nargs="+",
                               metavar="N,N" if nested else "N", **common)
        else:
            group.add_argument(flag_name(field.name), type=str, metavar="NAME", **common)

