"""Config keys for the user's own model and data: model.builder, data.source npz/python, study.code_dir."""

import pytest

from sweep.config import config_from_dict, load_config
from sweep.errors import ConfigError


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"model": {"builder": "mymodel.build"}}, "model.builder: model.builder must be 'module:function'"),
        ({"model": {"builder": "my-model:build"}}, "must be 'module:function'"),
        ({"model": {"builder": "a:b:c"}}, "must be 'module:function'"),
        ({"data": {"source": "npz"}}, "source 'npz' needs data.path, a .npz file"),
        ({"data": {"source": "python"}}, "source 'python' needs data.loader"),
        ({"data": {"source": "idx", "path": "d", "loader": "m:f"}}, "data.loader is read only with source 'python'"),
        ({"data": {"num_classes": 5}}, "data.num_classes applies to sources npz and python"),
        ({"data": {"source": "npz", "path": "d.npz", "num_classes": 1}}, "data.num_classes: Input should be greater"),
        ({"model": {"from_logits": "yes"}}, "model.from_logits"),
    ],
)
def test_bad_own_model_keys_are_one_line_errors(raw, message):
    with pytest.raises(ConfigError, match=message) as info:
        config_from_dict(raw)
    assert "\n" not in str(info.value)


def test_the_config_files_folder_is_recorded_only_when_the_config_names_code(write_config, tmp_path):
    plain = load_config(write_config("study: {name: plain}\n"))
    assert plain.study.code_dir is None and plain.model.builder is None and plain.model.from_logits is False
    own = load_config(write_config("model: {builder: 'mymodel:build'}\n", "own.yaml"))
    assert own.study.code_dir == str(tmp_path.resolve())
    (tmp_path / "code").mkdir()
    relative = load_config(write_config("study: {code_dir: code}\ndata: {source: python, loader: 'm:load'}\n", "r.yaml"))
    assert relative.study.code_dir == str((tmp_path / "code").resolve())
    assert config_from_dict(own.to_dict()) == own  # stored in the study, read back by resume
