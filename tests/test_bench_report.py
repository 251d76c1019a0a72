"""docs/results.md is assembled from the benchmarks' generated tables, in a fixed order."""

from tflite_adaspring.bench.report import build_page


def test_page_collects_tables_in_order(tmp_path):
    (tmp_path / "runtime_har_watch.md").write_text("### runtime table\n")
    (tmp_path / "retrain_gap_har_watch.md").write_text("### gap table\n")
    page = build_page(tmp_path)
    assert page.index("### gap table") < page.index("### runtime table")
    assert "`" + (tmp_path / "retrain_gap_har_watch.json").as_posix() + "`" in page


def test_empty_results_say_what_to_run(tmp_path):
    assert "run `make bench`" in build_page(tmp_path)
