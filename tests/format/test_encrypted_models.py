"""Encrypted and packed models load through LiteNetwork as the real library loaded them (tests/fixtures/crypto)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import FIXTURES
from megenginelite import LiteConfig, LiteExtraConfig, LiteGlobal, LiteNetwork
from megenginelite import crypto

CRYPTO = FIXTURES / "crypto"
CASES = [e for e in json.loads((CRYPTO / "manifest.json").read_text()) if e.get("file") and (CRYPTO / e["file"]).exists()]


@pytest.fixture(autouse=True)
def fresh_registry():
    crypto._reset_registry()
    yield
    crypto._reset_registry()


def load_case(entry: dict) -> LiteNetwork:
    config = LiteConfig()
    load = entry.get("load", {})
    for action, name, key in load.get("global", []):
        if action == "update_key":
            LiteGlobal.update_decryption_key(name, bytes.fromhex(key))
    if "cryption" in load:
        config.bare_model_cryption_name = load["cryption"]
    network = LiteNetwork(config=config)
    if load.get("disable_model_config"):
        network.extra_configure(LiteExtraConfig(True))
    network.load(str(CRYPTO / entry["file"]))
    return network


@pytest.mark.parametrize("entry", CASES, ids=[e["name"] for e in CASES])
def test_loads_like_the_real_library(entry):
    real = entry["real"]
    if not real["loaded"]:
        key = real["error"].split(", Error Code")[0].replace("Error: ", "")[:60]
        with pytest.raises(RuntimeError) as info:
            load_case(entry)
        if "json.exception" not in key and "utf-8" not in key:
            assert key in str(info.value)
        return
    network = load_case(entry)
    assert network.threads_number == real["threads_number"]
    assert network.is_cpu_inplace_mode() == real["cpu_inplace"]
    for name, shape in real["input_layouts"].items():
        assert network.get_io_tensor(name).layout.shapes == shape
    if "reference" in entry and all(shape[0] == 1 for shape in real["input_layouts"].values()):
        with np.load(CRYPTO / entry["reference"]) as ref:
            for key in ref.files:
                if key.startswith("input:"):
                    network.get_io_tensor(key[6:]).set_data_by_copy(ref[key])
            network.forward()
            for key in ref.files:
                if key.startswith("output:"):
                    np.testing.assert_allclose(network.get_io_tensor(key[7:]).to_numpy(), ref[key],
                                               rtol=1e-4, atol=1e-5)
