"""evaluate refuses what would make its counts lie: the same video twice, a foreign table, no table."""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from difffake_ray import schema, storage
from difffake_ray.config import load_config
from difffake_ray.pipeline.evaluate import run_evaluate

CFG = load_config(None, ["evaluate.exclude_seen=false"])


def _scores(folder, name, n=6, status="ok"):
    rows = [dict(video_id=f"v{i}", uri=f"v{i}.mp4", label="fake" if i % 2 else "real", dataset="d", method="m",
                 split="test", status=status, error=None, score=float(-i), n_faces=8, n_pairs=28)
            for i in range(n)]
    storage.write_parquet_atomic(pa.Table.from_pylist(rows, schema=schema.SCORES_SCHEMA), os.path.join(folder, name))


def test_two_outputs_in_one_folder_are_refused_not_counted_twice(tmp_path):
    scores = str(tmp_path / "scores")
    _scores(scores, "dataset=d/part-a.parquet")
    _scores(scores, "dataset=d/part-b.parquet")  # a second model's scores of the same videos
    with pytest.raises(ValueError, match=r"6 video\(s\) appear more than once \(e.g. v\d 2 times\)"):
        run_evaluate(scores, str(tmp_path / "report"), CFG)
    assert not os.path.exists(tmp_path / "report")


def test_a_foreign_table_and_a_missing_folder_fail_before_any_file_is_written(tmp_path):
    scores = str(tmp_path / "scores")
    _scores(scores, "part-a.parquet")
    pq.write_table(pa.table({"x": [1, 2]}), os.path.join(scores, "part-foreign.parquet"))
    with pytest.raises(ValueError, match=r"part-foreign.parquet: not a score table"):
        run_evaluate(scores, str(tmp_path / "report"), CFG)
    with pytest.raises(FileNotFoundError, match=r"nowhere: no score table here"):
        run_evaluate(str(tmp_path / "nowhere"), str(tmp_path / "report"), CFG)
    assert not os.path.exists(tmp_path / "report")


def test_low_evidence_scores_are_shown_but_not_counted(tmp_path):
    scores = str(tmp_path / "scores")
    _scores(scores, "part-a.parquet")
    few = [dict(video_id="few", uri="few.mp4", label="real", dataset="d", method="m", split="test",
                status=schema.LOW_EVIDENCE, error="3 faces", score=-50.0, n_faces=3, n_pairs=3)]
    storage.write_parquet_atomic(pa.Table.from_pylist(few, schema=schema.SCORES_SCHEMA),
                                 os.path.join(scores, "part-b.parquet"))
    metrics = run_evaluate(scores, str(tmp_path / "report"), CFG)
    assert metrics["overall"]["n_real"] == 3 and metrics["not_scored_by_status"] == {schema.LOW_EVIDENCE: 1}
