"""The command a run record carries must reproduce the run, extra parameters included."""

from unger.profiling import run_command


def test_run_command_rebuilds_the_kedro_command_line():
    run_params = {
        "pipeline_names": ["study"], "namespaces": ["tiger_s2024"], "node_names": None, "tags": None,
        "env": "tiny", "runtime_params": {"tiger_s2024": {"generative": {"patience": 3}}, "runtime": {"device": "cpu"}},
    }
    assert run_command(run_params) == (
        "kedro run --pipelines=study --namespaces=tiger_s2024 --env=tiny "
        "--params=tiger_s2024.generative.patience=3,runtime.device=cpu")
    assert run_command({"pipeline_names": None, "runtime_params": {}}) == "kedro run"
