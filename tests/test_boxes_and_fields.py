import json

import numpy as np
import pytest

from rpx_tasks.decoding import load_array, load_json_value
from rpx_tasks.errors import ManifestError
from rpx_tasks.metrics.boxes import box_area, box_iou_matrix


def test_box_iou_by_hand():
    a = np.array([[0, 0, 2, 2], [0, 0, 0, 0]])
    b = np.array([[1, 1, 3, 3], [0, 0, 2, 2], [5, 5, 4, 4]])
    iou = box_iou_matrix(a, b)
    assert iou.shape == (2, 3)
    assert iou[0, 0] == pytest.approx(1 / 7) and iou[0, 1] == 1.0 and iou[0, 2] == 0.0
    assert np.all(iou[1] == 0.0)
    assert box_area(np.array([[0, 0, 2, 3], [3, 3, 1, 1]])).tolist() == [6.0, 0.0]
    assert box_iou_matrix(np.zeros((0, 4)), b).shape == (0, 3)


def _resolver(root):
    return lambda value, sample_id, key: root / value


def test_array_fields_inline_npy_and_json(tmp_path):
    resolve = _resolver(tmp_path)
    np.save(tmp_path / "c.npy", np.array([[1, 2], [3, 4]], np.float32))
    (tmp_path / "c.json").write_text(json.dumps([[1, 2], [3, 4]]))
    for value in ([[1, 2], [3, 4]], "c.npy", "c.json"):
        assert load_array(value, resolve, "s", "coordinates", dtype=np.float32, columns=2).tolist() == [[1, 2], [3, 4]]
    assert load_array([], resolve, "s", "coordinates", dtype=np.float32, columns=2).shape == (0, 2)
    assert load_array([[1.5], [2.5]], resolve, "s", "depths", dtype=np.float32).tolist() == [1.5, 2.5]
    with pytest.raises(ManifestError, match=r"Sample 's'.*'coordinates'.*\(N, 2\)"):
        load_array([1, 2, 3], resolve, "s", "coordinates", dtype=np.float32, columns=2)
    with pytest.raises(ManifestError, match="not found"):
        load_array("missing.npy", resolve, "s", "coordinates", dtype=np.float32, columns=2)
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ManifestError, match="not valid JSON"):
        load_json_value("bad.json", resolve, "s", "boxes")
    with pytest.raises(ManifestError, match="numeric array"):
        load_array([["a", "b"]], resolve, "s", "coordinates", dtype=np.float32, columns=2)
