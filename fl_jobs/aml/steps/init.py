"""Azure ML step (orchestrator, once): the initial global model (round 0) and the strategy's
initial state.

Built under ``torch.manual_seed(config.federation.seed)`` like the local federation's, so both
runs start from the same weights. The input and output widths come from the orchestrator's
prepared test set (its meta records ``n_outputs``, the number of classes for classification).
The job's
strategy is built (``fl_jobs.strategies.registry``) and its fresh state written beside the
model, which the first aggregate step continues from.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fl_jobs.aml.steps.common import MODEL_FILE, SERVER_STATE_FILE, example_for, load_config
from fl_jobs.aml.steps.entry import step


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--test-data", type=Path, required=True, help="prepared test set folder")
    parser.add_argument("--out", type=Path, required=True, help="global model folder to write")


@step("Build the initial global model of an FL job.", arguments)
def main(args: argparse.Namespace) -> None:
    import torch

    from fl_jobs.aml.steps.model_folder import model_meta, shape_of
    from fl_jobs.core.model_io import save_weights
    from fl_jobs.core.silo_data import read_silo_data
    from fl_jobs.core.training import state_weights
    from fl_jobs.rounds.job_parts import build_strategy
    from fl_jobs.strategies.state_file import save_strategy_state

    config = load_config(args.config)
    test = read_silo_data(args.test_data)
    shape = shape_of(test, args.test_data)
    torch.manual_seed(config.federation.seed)
    model = example_for(config, test.task).build_model(config.example, shape)
    meta = model_meta(config, test.task, shape, round_index=0)
    save_weights(args.out / MODEL_FILE, state_weights(model), meta=meta)
    save_strategy_state(args.out / SERVER_STATE_FILE, build_strategy(config), 0)


if __name__ == "__main__":
    sys.exit(main())
