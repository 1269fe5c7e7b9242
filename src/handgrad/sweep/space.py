"""The search space of a sweep: which settings to try and with which seeds.

A sweep spec is a dict (or a TOML file holding the same thing) with two tables::

    [config]                 # the base training config, shared by every run
    model = "mlp"
    batch_size = 100

    [sweep]
    seeds = [0, 1, 2]        # or a count: seeds = 3 means [0, 1, 2]
    metric = "test_accuracy" # what "best setting" means ...
    goal = "max"             # ... and in which direction

    [sweep.grid]             # every combination of these values
    lr = [1e-4, 5e-3, 0.1]
    epochs = [5, 15]
    model_kwargs.hidden = [[100], [200], [200, 200]]   # nested keys: dotted

    [[sweep.points]]         # explicit settings, listed one by one
    epochs = 5
    lr = 1e-4

    [sweep.random]           # random search: n draws from these distributions
    n = 8
    seed = 0                 # the draws are reproducible
    lr = { log_uniform = [1e-4, 0.1] }
    batch_size = { choice = [50, 100, 200] }

The settings are the product of the three parts (a missing part counts as one
empty setting): every point combined with every grid combination and every
random draw. A setting is a flat dict of dotted keys -> values (its
*overrides*); a run's config is the base config with the overrides, then the
forced values (``--set`` on the command line) and finally ``seed`` written in.
Nested dicts are merged key by key, so ``model_kwargs.hidden`` replaces only
``hidden`` inside ``model_kwargs``.

Report options in ``[sweep]`` (see report.py): ``name`` and ``description`` (the
page's title and text), ``facet`` (config keys: a table and a grid of curves with
one row per value, e.g. ``["model"]``) and ``compare`` (metrics drawn for every
setting on one figure, e.g. ``["val_acc"]``).

Distributions for random search: ``choice = [v, ...]``, ``uniform = [lo, hi]``,
``log_uniform = [lo, hi]`` (uniform in log space, for learning rates),
``int_uniform = [lo, hi]`` (integers, both ends included).
"""
from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
from dataclasses import dataclass

import numpy as np

DISTRIBUTIONS = ("choice", "uniform", "log_uniform", "int_uniform")
SWEEP_KEYS = ("seeds", "metric", "goal", "grid", "points", "random", "facet", "compare", "name", "description")


@dataclass(frozen=True)
class Run:
    """One training run of a sweep: a setting trained from one seed."""

    run_id: str
    setting_index: int
    seed: int
    overrides: dict
    config: dict


def flatten(tree: dict, prefix: str = "") -> dict:
    """``{"a": {"b": 1}, "c": 2}`` -> ``{"a.b": 1, "c": 2}``: nested tables become dotted keys."""
    flat = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, path + "."))
        else:
            flat[path] = value
    return flat


def set_path(config: dict, dotted: str, value) -> None:
    """Set ``config["a"]["b"] = value`` for ``dotted = "a.b"``, creating tables on the way;
    a dict value is merged into an existing table rather than replacing it."""
    *parents, leaf = dotted.split(".")
    node = config
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    if isinstance(value, dict) and isinstance(node.get(leaf), dict):
        for key, sub in value.items():
            set_path(node[leaf], key, sub)
    else:
        node[leaf] = copy.deepcopy(value)


def apply(config: dict, overrides: dict) -> dict:
    """A deep copy of ``config`` with the dotted ``overrides`` written in."""
    out = copy.deepcopy(config)
    for key, value in overrides.items():
        set_path(out, key, value)
    return out


def _seeds(value) -> list:
    if isinstance(value, bool) or not isinstance(value, (int, list)):
        raise ValueError(f"sweep: 'seeds' must be a count or a list of ints, got {value!r}")
    if isinstance(value, int):
        if value < 1:
            raise ValueError(f"sweep: 'seeds' as a count must be >= 1, got {value}")
        return list(range(value))
    if not value or not all(isinstance(s, int) and not isinstance(s, bool) for s in value):
        raise ValueError(f"sweep: 'seeds' must be a non-empty list of ints, got {value!r}")
    if len(set(value)) != len(value):
        raise ValueError(f"sweep: 'seeds' has repeated values: {value}")
    return list(value)


def _grid(grid: dict) -> list:
    axes = flatten(grid)
    for key, values in axes.items():
        if not isinstance(values, list) or not values:
            raise ValueError(f"sweep.grid: '{key}' must be a non-empty list of values, got {values!r}")
    keys = list(axes)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(axes[k] for k in keys))]


def _points(points) -> list:
    if not isinstance(points, list) or not points or not all(isinstance(p, dict) for p in points):
        raise ValueError(f"sweep.points: expected a non-empty list of tables (dicts), got {points!r}")
    return [flatten(p) for p in points]


def _is_distribution(value) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in DISTRIBUTIONS


def _distributions(tree: dict, prefix: str = "") -> dict:
    found = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if _is_distribution(value):
            found[path] = value
        elif isinstance(value, dict):
            found.update(_distributions(value, path + "."))
        else:
            raise ValueError(
                f"sweep.random: '{path}' must be a distribution table like {{ choice = [...] }} "
                f"or {{ log_uniform = [lo, hi] }} (one of {', '.join(DISTRIBUTIONS)}), got {value!r}"
            )
    return found


def _draw(rng: np.random.Generator, key: str, dist: dict):
    (kind, args), = dist.items()
    if kind == "choice":
        if not isinstance(args, list) or not args:
            raise ValueError(f"sweep.random: '{key}' choice needs a non-empty list, got {args!r}")
        return copy.deepcopy(args[int(rng.integers(len(args)))])
    if not (isinstance(args, list) and len(args) == 2 and all(isinstance(a, (int, float)) for a in args)
            and args[0] < args[1]):
        raise ValueError(f"sweep.random: '{key}' {kind} needs [low, high] with low < high, got {args!r}")
    low, high = args
    if kind == "uniform":
        return float(rng.uniform(low, high))
    if kind == "log_uniform":
        if low <= 0:
            raise ValueError(f"sweep.random: '{key}' log_uniform needs low > 0, got {low}")
        return float(math.exp(rng.uniform(math.log(low), math.log(high))))
    return int(rng.integers(int(low), int(high) + 1))


def _random(random: dict) -> list:
    params = dict(random)
    n, seed = params.pop("n", None), params.pop("seed", 0)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"sweep.random: 'n' (the number of draws) must be an int >= 1, got {n!r}")
    dists = _distributions(params)
    if not dists:
        raise ValueError("sweep.random: no distributions given (e.g. lr = { log_uniform = [1e-4, 0.1] })")
    rng = np.random.default_rng(seed)
    return [{key: _draw(rng, key, dist) for key, dist in dists.items()} for _ in range(n)]


def settings(sweep: dict) -> list:
    """The list of settings (flat override dicts) the ``[sweep]`` table describes, in order."""
    parts = [
        _points(sweep["points"]) if "points" in sweep else [{}],
        _grid(sweep["grid"]) if "grid" in sweep else [{}],
        _random(sweep["random"]) if "random" in sweep else [{}],
    ]
    return [{k: v for part in combo for k, v in part.items()} for combo in itertools.product(*parts)]


def config_hash(config: dict) -> str:
    """A short stable fingerprint of a config (key order does not matter)."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def check_spec(spec: dict) -> None:
    """Raise ValueError naming the problem unless ``spec`` looks like a sweep spec."""
    if not isinstance(spec, dict):
        raise ValueError(f"sweep spec: expected a table (dict), got {type(spec).__name__}")
    unknown = set(spec) - {"config", "sweep"}
    if unknown:
        raise ValueError(f"sweep spec: unknown top-level tables {sorted(unknown)}; expected [config] and [sweep]")
    sweep = spec.get("sweep", {})
    if not isinstance(spec.get("config", {}), dict) or not isinstance(sweep, dict):
        raise ValueError("sweep spec: [config] and [sweep] must be tables (dicts)")
    unknown = set(sweep) - set(SWEEP_KEYS)
    if unknown:
        raise ValueError(f"sweep spec: unknown keys in [sweep]: {sorted(unknown)}; known: {', '.join(SWEEP_KEYS)}")
    if sweep.get("goal", "max") not in ("max", "min"):
        raise ValueError(f"sweep spec: 'goal' must be 'max' or 'min', got {sweep['goal']!r}")


def merged_settings(spec: dict, forced: dict | None = None) -> dict:
    """``{index: first index}`` of the settings whose configs, once ``forced`` is
    written in, equal an earlier setting's (e.g. ``epochs=[5, 15]`` under
    ``--set epochs=1``): :func:`expand` runs each such config once, under the
    first setting's index."""
    check_spec(spec)
    first, merged = {}, {}
    for index, overrides in enumerate(settings(spec.get("sweep", {}))):
        key = config_hash(apply(apply(spec.get("config", {}), overrides), forced or {}))
        if key in first:
            merged[index] = first[key]
        else:
            first[key] = index
    return merged


def expand(spec: dict, forced: dict | None = None) -> list:
    """All runs of a sweep: every setting x every seed, as :class:`Run` objects.

    ``forced`` (dotted key -> value) is written into every run's config after the
    setting, e.g. ``{"epochs": 1}`` to smoke-test a sweep; settings it makes
    identical run once (see :func:`merged_settings`). The run id
    ``"{setting:03d}-seed{seed}-{hash}"`` names the run's directory; the hash covers
    the whole config, so a changed setting never reuses an old result.
    """
    check_spec(spec)
    sweep = spec.get("sweep", {})
    base = spec.get("config", {})
    merged = merged_settings(spec, forced)
    runs = []
    for index, overrides in enumerate(settings(sweep)):
        if index in merged:
            continue
        config = apply(apply(base, overrides), forced or {})
        for seed in _seeds(sweep.get("seeds", [0])):
            run_config = apply(config, {"seed": seed})
            run_id = f"{index:03d}-seed{seed}-{config_hash(run_config)}"
            runs.append(Run(run_id, index, seed, overrides, run_config))
    return runs
