"""Stack files: the samples parse, broken files are refused, and the Pulumi program parses the
stack config before it declares anything."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from pulumi.runtime import config as runtime_config

from blueprints.catalog import BLUEPRINTS
from blueprints.mock_runtime import run_under_mocks
from blueprints.spec import ConfigError, load_stack_file
from tests.infra.helpers import declared_before_error

REPO = Path(__file__).resolve().parents[2]
STACK_FILES = sorted((REPO / "stacks").glob("Pulumi.*.yaml"))


def test_there_is_one_sample_stack_per_blueprint() -> None:
    blueprints = sorted(load_stack_file(path).blueprint for path in STACK_FILES)
    assert blueprints == sorted(BLUEPRINTS)


@pytest.mark.parametrize("path", STACK_FILES, ids=lambda p: p.name)
def test_sample_stack_files_parse(path: Path) -> None:
    spec = load_stack_file(path)
    assert path.name == f"Pulumi.{spec.blueprint}.yaml"
    assert spec.silos
    assert all(s.network_range for s in spec.silos if s.silo_kind.in_vnet)


def test_missing_stack_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_stack_file(tmp_path / "Pulumi.nope.yaml")


def test_stack_file_without_config_section(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.x.yaml"
    path.write_text("encryptionsalt: abc\n")
    with pytest.raises(ConfigError, match="'config:'"):
        load_stack_file(path)


def test_stack_file_with_broken_yaml(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.x.yaml"
    path.write_text("config:\n  fl-sandbox:silos: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_stack_file(path)


def test_a_key_written_twice_is_refused_with_both_lines(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.x.yaml"
    path.write_text(
        "config:\n  fl-sandbox:blueprint: minimal\n  fl-sandbox:silos:\n"
        "    - {name: a, region: westeurope}\n  fl-sandbox:blueprint: eyes-off\n"
    )
    with pytest.raises(ConfigError) as info:
        load_stack_file(path)
    assert "'fl-sandbox:blueprint' is given twice (lines 2 and 5)" in str(info.value)
    assert "keep only one" in info.value.fix


def test_a_setting_without_the_namespace_is_named_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.x.yaml"
    path.write_text(
        "config:\n  azure-native:location: westeurope\n  blueprint: minimal\n"
        "  fl-sandbox:silos:\n    - {name: a, region: westeurope}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_stack_file(path)
    assert info.value.key == "blueprint"
    assert "write it as 'fl-sandbox:blueprint'" in info.value.fix


def test_stack_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.x.yaml"
    path.write_text(
        "config:\n  azure-native:location: westeurope\n  fl-sandbox:blueprint: eyes-of\n"
        "  fl-sandbox:silos:\n    - {name: a, region: westeurope}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_stack_file(path)
    assert str(path) in str(info.value)
    assert "fl-sandbox:blueprint = 'eyes-of'" in str(info.value)


# --- the Pulumi program (__main__.py) -------------------------------------------------------


def _load_program() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fl_sandbox_program", REPO / "__main__.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def stack_config() -> Iterator[dict[str, str]]:
    """Config as the Pulumi engine hands it over: namespaced keys, JSON for structures."""
    values: dict[str, str] = {}
    yield values
    runtime_config.set_all_config({})


def _set(values: dict[str, str], settings: dict[str, object]) -> None:
    for key, value in settings.items():
        text = value if isinstance(value, str) else json.dumps(value)
        values[f"fl-sandbox:{key}"] = text
    values["azure-native:location"] = "westeurope"
    runtime_config.set_all_config(values)


def test_program_reads_every_setting_of_the_namespace(stack_config: dict[str, str]) -> None:
    _set(
        stack_config,
        {
            "blueprint": "minimal",
            "silos": [{"name": "a", "region": "westeurope", "maxNodes": 3}],
            "orchestratorMaxNodes": "4",
            "tags": {"team": "ml"},
        },
    )
    settings = _load_program().stack_settings()
    assert settings == {
        "blueprint": "minimal",
        "silos": [{"name": "a", "region": "westeurope", "maxNodes": 3}],
        "orchestratorMaxNodes": "4",
        "tags": {"team": "ml"},
    }


def test_program_refuses_bad_config_before_declaring(stack_config: dict[str, str]) -> None:
    _set(stack_config, {"blueprint": "minimal", "silos": [{"name": "a", "region": "mars"}]})
    program = _load_program().program
    error, declared = declared_before_error(program)
    assert error.key == "silos[0].region"
    assert "stacks/Pulumi.plan.yaml" in str(error)
    assert declared == []


def test_program_builds_a_valid_config(stack_config: dict[str, str]) -> None:
    _set(stack_config, {"blueprint": "minimal", "silos": [{"name": "a", "region": "uksouth"}]})
    run = run_under_mocks(_load_program().program)
    assert run.result["federation"]["silos"][0]["region"] == "uksouth"
    assert run.of_type("azure-native:machinelearningservices:Workspace")
