import numpy as np

from benchbench.data import Dataset, load


def test_as_dict_records_the_source(tmp_path):
    record = load("mnist", data_dir=tmp_path, n_train=4, n_val=2).as_dict()
    assert record["source"] == "synthetic" and record["n_train"] == 4 and record["n_val"] == 2
    assert record["x_shape"] == [1, 28, 28] and record["x_dtype"] == "float32" and record["n_classes"] == 10
    assert "synthetic stand-in" in record["note"]


def test_dataset_fields():
    x, t = np.zeros((3, 2), np.float32), np.zeros(3, np.int32)
    ds = Dataset("sine", (x, t), (x[:1], t[:1]), "generated", "note", None)
    assert ds.as_dict()["n_val"] == 1 and ds.n_classes is None
