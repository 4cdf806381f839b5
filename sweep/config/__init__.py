"""Typed, validated configuration: YAML in, a frozen ``Config`` out.

``schema`` holds the six sections (study, data, model, train, search, lr_finder) and
the names other layers share (schedules, objectives, bounds); ``files`` reads YAML and
``--set`` overrides into a ``Config``. Unknown keys, wrong types, non-finite numbers and
inconsistent ranges are refused with a one-line ``ConfigError``. Imports only pydantic,
pyyaml and ``sweep.errors``; every layer above may import it.
"""

from sweep.config.files import apply_overrides, config_from_dict, load_config, parse_yaml
from sweep.config.families import (DECAY_SCHEDULES, DECAY_SHAPES, DEFAULT_M_MUL, DEFAULT_SCHEDULES, DEFAULT_T_MUL,
                                   FAMILY_PARAMS, FLOORED, ONE_CYCLE_DIV_FACTOR, ONE_CYCLE_FINAL_DIV, OPTIONAL_PARAMS,
                                   SCHEDULE_PARAMS, SCHEDULES, DecayShape, ScheduleName, family_terms,
                                   min_lr_ratio_choices)
from sweep.config.schema import (MOMENTUM_OPTIMIZERS, OPTIMIZERS, OptimizerName, default_direction, metric_label,
                                 ENTRY_POINT_PATTERN, MAX_INITIAL_LR, MAX_TRIALS, MAX_WORKERS,
                                 OBJECTIVES, PARAMS_KEY, STUDY_NAME_PATTERN, Config, DataConfig, FloatRange,
                                 IntRange, LRFinderConfig, ModelConfig, PositiveFloatRange, SearchConfig,
                                 StudyConfig, TrainConfig, validate_study_name)

__all__ = ["DECAY_SCHEDULES", "DECAY_SHAPES", "DEFAULT_M_MUL", "DEFAULT_SCHEDULES", "DEFAULT_T_MUL", "FAMILY_PARAMS",
           "FLOORED", "ONE_CYCLE_DIV_FACTOR", "ONE_CYCLE_FINAL_DIV", "OPTIONAL_PARAMS", "SCHEDULE_PARAMS", "DecayShape",
           "family_terms", "min_lr_ratio_choices", "MOMENTUM_OPTIMIZERS", "OPTIMIZERS", "OptimizerName",
           "default_direction", "metric_label", "ENTRY_POINT_PATTERN", "MAX_INITIAL_LR", "MAX_TRIALS", "MAX_WORKERS", "OBJECTIVES",
           "PARAMS_KEY", "SCHEDULES", "STUDY_NAME_PATTERN", "Config", "DataConfig", "FloatRange", "IntRange",
           "LRFinderConfig", "ModelConfig", "PositiveFloatRange", "ScheduleName", "SearchConfig", "StudyConfig",
           "TrainConfig", "apply_overrides", "config_from_dict", "load_config", "parse_yaml", "validate_study_name"]
