"""Damaged data: a clear error before any training, and no study left behind."""

import gzip
import struct

import numpy as np
import pytest

from tests.conftest import SAMPLE_DIR


def _idx(images: np.ndarray | None = None, labels: np.ndarray | None = None, *, image_magic=2051, label_magic=2049):
    """IDX bytes (images, labels) for arrays of uint8."""
    out = []
    if images is not None:
        n, rows, cols = images.shape
        out.append(struct.pack(">IIII", image_magic, n, rows, cols) + images.tobytes())
    if labels is not None:
        out.append(struct.pack(">II", label_magic, len(labels)) + labels.tobytes())
    return out


def _folder(root, name, images=b"", labels=b"", gz=False):
    folder = root / name
    folder.mkdir()
    for stem, payload in (("train-images-idx3-ubyte", images), ("train-labels-idx1-ubyte", labels)):
        if payload is None:
            continue
        if gz:
            (folder / f"{stem}.gz").write_bytes(gzip.compress(payload))
        else:
            (folder / stem).write_bytes(payload)
    return folder


RNG = np.random.default_rng(0)
IMAGES = RNG.integers(0, 255, size=(200, 28, 28), dtype=np.uint8)
LABELS = np.arange(200, dtype=np.uint8) % 10
GOOD_IMAGES, GOOD_LABELS = _idx(IMAGES, LABELS)

FAULTS = {
    "missing folder": (None, "is not a folder"),
    "empty folder": ((None, None), "has no train-images"),
    "labels missing": ((GOOD_IMAGES, None), "has no train-labels"),
    "empty files": ((b"", b""), ""),
    "truncated images": ((GOOD_IMAGES[: len(GOOD_IMAGES) // 2], GOOD_LABELS), ""),
    "truncated header": ((GOOD_IMAGES[:7], GOOD_LABELS), ""),
    "wrong image magic": ((_idx(IMAGES, None, image_magic=2049)[0], GOOD_LABELS), "magic"),
    "wrong label magic": ((GOOD_IMAGES, _idx(None, LABELS, label_magic=2051)[0]), "magic"),
    "labels out of range": ((GOOD_IMAGES, _idx(None, (LABELS + 20).astype(np.uint8))[0]), "label"),
    "lengths differ": ((GOOD_IMAGES, _idx(None, LABELS[:150])[0]), "200 images but 150 labels"),
    "wrong image size": ((_idx(RNG.integers(0, 255, size=(200, 32, 32), dtype=np.uint8), None)[0], GOOD_LABELS),
                         "28"),
    "random bytes": ((RNG.bytes(5000), RNG.bytes(300)), ""),
    "trailing bytes": ((GOOD_IMAGES + b"\0" * 100, GOOD_LABELS), "truncated or corrupt"),
    "huge count in header": ((struct.pack(">IIII", 2051, 2**32 - 1, 28, 28) + IMAGES.tobytes(), GOOD_LABELS),
                             "truncated or corrupt"),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gzip"])
def test_damaged_idx_folders_fail_before_training(cli, fault, gz):
    files, expect = FAULTS[fault]
    if files is None:
        path = cli.root / "nowhere"
    else:
        path = _folder(cli.root, "data", *files, gz=gz)
    cli.assert_clear_error("run", "tiny.yaml", "--set", "data.source=idx", "--set", f"data.path={path}", expect=expect)


def test_a_corrupt_gzip_stream(cli):
    folder = _folder(cli.root, "data", GOOD_IMAGES, GOOD_LABELS, gz=True)
    blob = (folder / "train-images-idx3-ubyte.gz").read_bytes()
    (folder / "train-images-idx3-ubyte.gz").write_bytes(blob[: len(blob) // 2])
    cli.assert_clear_error("run", "tiny.yaml", "--set", "data.source=idx", "--set", f"data.path={folder}")


def test_a_limit_larger_than_the_data(cli):
    cli.assert_clear_error("run", "tiny.yaml", "--set", "data.source=idx", "--set", f"data.path={SAMPLE_DIR}",
                           "--set", "data.limit=50000", expect="data.limit")


def test_a_validation_split_that_leaves_a_class_empty(cli):
    # 30 images of 10 classes: a 5% validation split (2 images) cannot hold every class.
    cli.assert_clear_error("run", "tiny.yaml", "--set", "data.limit=30", "--set", "data.validation_fraction=0.05",
                           expect="validation")


def test_a_missing_test_split_fails_evaluate_before_training(cli):
    # The shared sample has no t10k files: evaluate must say so before retraining anything.
    import optuna

    from sweep import attrs
    from sweep.config import config_from_dict
    from sweep.storage.database import make_storage
    from tests.robustness.conftest import TINY

    import yaml

    raw = yaml.safe_load(TINY)
    raw["data"] = {"source": "idx", "path": str(SAMPLE_DIR)}
    (cli.root / "studies").mkdir()
    study = optuna.create_study(study_name="tiny", storage=make_storage("sqlite:///studies/tiny.db", create=True),
                                direction="maximize")
    study.set_user_attr(attrs.CONFIG, config_from_dict(raw).to_dict())
    study.add_trial(optuna.trial.create_trial(
        value=0.8, params={"initial_lr": 1e-3, "schedule": "constant", "warmup_fraction": 0.0},
        distributions={"initial_lr": optuna.distributions.FloatDistribution(1e-5, 1, log=True),
                       "schedule": optuna.distributions.CategoricalDistribution(["constant"]),
                       "warmup_fraction": optuna.distributions.FloatDistribution(0, 0.3)}))
    cli.assert_clear_error("evaluate", "tiny", expect="t10k")


def _set_data(path) -> list[str]:
    return ["--set", "data.source=idx", "--set", f"data.path={path}"]


def test_a_file_instead_of_a_folder(cli):
    cli.assert_clear_error("run", "tiny.yaml", *_set_data(cli.root / "tiny.yaml"), expect="not a folder")


def test_a_folder_or_a_device_named_like_the_data(cli):
    folder = _folder(cli.root, "data", None, GOOD_LABELS)
    (folder / "train-images-idx3-ubyte").mkdir()
    cli.assert_clear_error("run", "tiny.yaml", *_set_data(folder), expect="has no train-images")
    (folder / "train-images-idx3-ubyte").rmdir()
    (folder / "train-images-idx3-ubyte").symlink_to("/dev/zero")  # endless: must never be read
    cli.assert_clear_error("run", "tiny.yaml", *_set_data(folder), expect="has no train-images")


@pytest.mark.parametrize("argv", [["lr-find", "tiny.yaml"], ["train", "tiny.yaml", "--params",
                                                             '{"initial_lr": 0.001, "schedule": "constant"}']],
                         ids=["lr-find", "train"])
def test_other_commands_check_the_data_first(cli, argv):
    folder = _folder(cli.root, "data", GOOD_IMAGES[: len(GOOD_IMAGES) // 2], GOOD_LABELS)
    cli.assert_clear_error(*argv, *_set_data(folder), expect="truncated or corrupt")
