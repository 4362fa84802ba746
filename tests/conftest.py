"""Test set-up: the tests run on the real MNIST / Fashion-MNIST files.

``GLIMPSE_DATA_DIR`` chooses the data folder. When it is unset and the project sits
beside a ``shared/data`` folder (as in this project's CI), that folder is used; else the
package's own rules apply (user cache, downloading through torchvision).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

if not os.environ.get("GLIMPSE_DATA_DIR"):
    shared = ROOT.parent / "shared" / "data"
    if (shared / "MNIST" / "raw").is_dir():
        os.environ["GLIMPSE_DATA_DIR"] = str(shared)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    from glimpse_env.data import resolve_data_dir

    return resolve_data_dir()


#: Tests left out of the edit-test loop, ``python -m pytest -q -m "not slow"`` (CI runs them
#: all): each trains a model, starts Python processes or torchrun, or builds the docs site,
#: where the others take milliseconds. ``FILE::FUNCTION`` marks every parametrization of
#: the function; a test can also carry ``@pytest.mark.slow`` itself (test_docs.py,
#: test_packaging.py). test_packaging.py checks that every name here is a test.
SLOW_TESTS = frozenset(
    {
        "test_distributed.py::test_baselines_under_torchrun",
        "test_distributed.py::test_ram_under_torchrun",
        "test_distributed.py::test_a_failing_rank_ends_the_job_with_its_error",
        "test_baselines.py::test_resume_is_bit_identical_to_a_straight_run",
        "test_baselines.py::test_stochastic_weight_averaging_averages_the_ends_of_epochs_at_a_constant_rate",
        "test_baselines.py::test_short_training_beats_chance_by_far",
        "test_baselines.py::test_cosine_schedule_anneals_over_the_epochs_whatever_val_does",
        "test_baselines.py::test_the_weight_average_is_what_is_validated_and_tested",
        "test_baselines.py::test_evaluate_and_visualize_a_checkpoint",
        "test_baselines.py::test_bad_input_is_refused_and_nothing_is_overwritten",
        "test_baselines.py::test_time_limit_stops_after_an_epoch_and_still_tests",
        "test_baselines.py::test_blocks_are_the_feature_map_cut_naively",
        "test_checkpoints.py::test_bad_command_lines_end_the_programs_with_one_line",
        "test_checkpoints.py::test_resume_never_runs_the_checkpoints_code",
        "test_checkpoints.py::test_ctrl_c_ends_the_baseline_trainer_with_one_line_and_the_run_resumes",
        "test_checkpoints.py::test_a_kill_between_best_and_last_resumes_to_the_same_cnn_run",
        "test_checkpoints.py::test_a_kill_inside_any_checkpoint_write_resumes_to_the_same_ram_run",
        "test_checkpoints.py::test_no_flipped_bit_anywhere_loads_other_values",
        "test_checkpoints.py::test_ctrl_c_ends_the_ram_trainer_with_one_line",
        "test_checkpoints.py::test_resuming_the_other_programs_run_is_one_line_and_writes_nothing",
        "test_ram_training.py::test_resume_is_bit_identical_to_a_straight_run",
        "test_ram_training.py::test_existing_run_folder_is_refused",
        "test_ram_training.py::test_resume_with_a_fixed_training_set",
        "test_ram_training.py::test_evaluate_and_visualize_a_checkpoint",
        "test_ram_training.py::test_nan_loss_stops_and_keeps_the_last_good_checkpoint",
        "test_ram_training.py::test_resume_refuses_changed_settings_and_missing_folders",
        "test_ram_training.py::test_bad_checkpoints_give_clear_errors",
        "test_cli_inputs.py::test_the_entry_points_print_one_line",
        "test_weights.py::test_a_shipped_baseline_reproduces_its_run",
        "test_env.py::test_make_without_import_uses_module_prefix",
        "test_env.py::test_index_gives_the_same_canvas_in_another_process",
        "test_copy.py::test_pickled_env_steps_the_same_in_a_new_process",
    }
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tests of :data:`SLOW_TESTS` ``slow``."""
    for item in items:
        if f"{item.path.name}::{getattr(item, 'originalname', item.name)}" in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
