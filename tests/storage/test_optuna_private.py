"""The Optuna private names sweep relies on (sweep.storage.optuna_private), exercised on
real storages: if an Optuna upgrade renames or removes one, these fail, loudly and here."""

import time

import optuna
import pytest
from optuna.trial import TrialState

from sweep.storage import optuna_private as private
from sweep.storage.database import make_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(params=["sqlite", "memory"])
def study(request, tmp_path):
    if request.param == "memory":
        return optuna.create_study()
    return optuna.create_study(storage=make_storage(f"sqlite:///{tmp_path}/p.db", create=True))


def test_the_public_system_attr_api_is_still_gone_so_the_private_route_is_still_needed():
    # If Optuna brings it back, move sweep.storage.optuna_private to it.
    assert not hasattr(optuna.Study, "set_system_attr") and not hasattr(optuna.Study, "system_attrs")


def test_study_system_attrs_round_trip_and_stay_out_of_user_attrs(study):
    private.set_study_system_attr(study, "sweep:probe", {"a": [1, 2]})
    assert private.study_system_attrs(study)["sweep:probe"] == {"a": [1, 2]}
    assert "sweep:probe" not in study.user_attrs
    assert isinstance(private.storage_of(study), optuna.storages.BaseStorage)


def test_trial_ids_address_the_storage_for_live_and_frozen_trials(study):
    trial = study.ask()
    frozen = study.trials[0]
    assert private.trial_id(trial) == private.trial_id(frozen)
    assert private.trial_of(study, trial.number).number == trial.number
    storage = private.storage_of(study)
    assert storage.set_trial_state_values(private.trial_id(trial), state=TrialState.FAIL) is True
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        storage.set_trial_state_values(private.trial_id(frozen), state=TrialState.FAIL)


def test_stale_trials_are_found_on_a_heartbeat_storage(tmp_path):
    assert hasattr(optuna.storages.RDBStorage, "_get_stale_trial_ids"), "Optuna renamed its stale-trial query"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path}/h.db", heartbeat_interval=1, grace_period=1)
        study = optuna.create_study(storage=storage)
        trial = study.ask()
        storage.record_heartbeat(private.trial_id(trial))
        assert private.stale_trial_ids(study) == []
        time.sleep(2.1)
        assert private.stale_trial_ids(study) == [private.trial_id(trial)]
    assert private.stale_trial_ids(optuna.create_study()) == []  # no heartbeat: none stale
