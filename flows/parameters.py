"""The parameters of flow ``rpx-bench``, derived from :class:`rpx_tasks.config.RunConfig`'s fields.

Prefect-free, so the CLI can map its options before Prefect is imported. Every RunConfig field
is a flow parameter of the same name, except:

- ``model_name``, which the flow calls ``model`` (as ``rpx bench --model``);
- the fields in ``NOT_FLOW_PARAMETERS``, which a flow run leaves at their defaults;

and the flow has parameters that are not RunConfig fields (``FLOW_ONLY_PARAMETERS``).

Each parameter's default is its field's (``PARAMETER_DEFAULTS``), so RunConfig is the one place
that says what a run does when a value is not given.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from rpx_tasks.config import RunConfig
from rpx_tasks.errors import ConfigError

# RunConfig field -> flow parameter, where the names differ.
RENAMED = {"model_name": "model"}

# RunConfig fields that are not flow parameters, and why.
NOT_FLOW_PARAMETERS = {
    "model": "a Python object; a flow names its model by `model` (RunConfig.model_name) or `hf_checkpoint`",
    "temporal_stability": "a library option; flows always compute temporal stability",
}

# Flow parameters that are not RunConfig fields: what the flow does around its runs, and their defaults.
FLOW_ONLY_PARAMETERS: dict[str, Any] = {
    "shards": None,  # K: fan out the K shard runs (shard 1/K .. K/K) as subflows, then merge them into one report
}

# Flow parameter -> RunConfig field, in RunConfig's field order.
PARAMETER_FIELDS: dict[str, str] = {
    RENAMED.get(field.name, field.name): field.name
    for field in dataclasses.fields(RunConfig)
    if field.name not in NOT_FLOW_PARAMETERS
}


def _parameter_default(run_field: dataclasses.Field) -> Any:
    """A field's default as a flow parameter default: None for a built default (e.g. ``{}``: a
    signature default must not be shared and mutable, and None makes RunConfig build it)."""
    if run_field.default_factory is not dataclasses.MISSING:
        return None
    return run_field.default


# Flow parameter -> its default: RunConfig's; required fields (``task``) have none.
PARAMETER_DEFAULTS: dict[str, Any] = {
    RENAMED.get(field.name, field.name): _parameter_default(field)
    for field in dataclasses.fields(RunConfig)
    if field.name not in NOT_FLOW_PARAMETERS and _parameter_default(field) is not dataclasses.MISSING
}


def config_params(flow_values: dict[str, Any]) -> dict[str, Any]:
    """Return the RunConfig keyword arguments of flow parameter values (``model`` becomes ``model_name``).

    Raises ConfigError for a name that is not a flow parameter.
    """
    _check_known(flow_values, "Not parameters of flow rpx-bench")
    return {PARAMETER_FIELDS[name]: value for name, value in flow_values.items()}


def flow_parameters(options: dict[str, Any]) -> dict[str, Any]:
    """Return the flow parameters of CLI-style options (RunConfig field names, or already flow names, or
    ``FLOW_ONLY_PARAMETERS``).

    ``model_name`` becomes ``model``; None values drop out (the flow's defaults apply). Raises
    ConfigError for an option that is not a flow parameter.
    """
    renamed = {RENAMED.get(key, key): value for key, value in options.items()}
    _check_known(
        {key: value for key, value in renamed.items() if key not in FLOW_ONLY_PARAMETERS},
        "Not parameters of flow rpx-bench",
    )
    return {key: value for key, value in renamed.items() if value is not None}


def _check_known(values: dict[str, Any], message: str) -> None:
    unknown = sorted(set(values) - set(PARAMETER_FIELDS))
    if unknown:
        raise ConfigError(f"{message}: {unknown}.", hint=f"known: {sorted(PARAMETER_FIELDS)}")
