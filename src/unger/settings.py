"""Project settings: config loading, hooks and the catalog class."""

from omegaconf.resolvers import oc

from unger.config import UngerConfigLoader
from unger.hooks import ProfileRunHook, ValidateParametersHook

HOOKS = (ValidateParametersHook(), ProfileRunHook())

CONFIG_LOADER_CLASS = UngerConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # Without "soft", an env that sets one key of a group would drop the rest of that group.
    "merge_strategy": {"parameters": "soft", "mlflow": "soft", "catalog": "soft"},
    # ${oc.env:...} outside credentials: mlflow.yml reads UNGER_MLFLOW_URI, so that runs made in
    # parallel can each write their own store.
    "custom_resolvers": {"oc.env": oc.env},
}
