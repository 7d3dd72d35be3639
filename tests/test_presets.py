"""Presets: the v1 format, byte-identical round trips, validation, shipped presets."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from lactose_audio.chains import Chain, make_key
from lactose_audio.errors import PresetError
from lactose_audio.presets import (
    FORMAT,
    SHIPPED_DIR,
    VERSION,
    Effect,
    dumps,
    list_presets,
    load_preset,
    save_preset,
    validate_document,
)
from lactose_audio.schema import json_depth

FIXTURES = Path(__file__).parent / "fixtures"


def _effect(n_ranges: int = 3) -> Effect:
    chain = Chain.from_spec("gain>tanh>lowpass", key=make_key("amplitude"), n_ranges=n_ranges)
    rng = np.random.default_rng(0)
    for stage in chain.stages:
        lo = np.array([p.minimum for p in stage.block.params])
        hi = np.array([p.maximum for p in stage.block.params])
        stage.set_physical(lo + (hi - lo) * rng.uniform(0.1, 0.9, (n_ranges, lo.size)))
    coverage = [{"counts": [10, 20, 30][:n_ranges], "flagged": [False] * n_ranges}] * 3
    return Effect(
        chain=chain,
        name="t",
        description="test",
        sample_rate=44100,
        coverage=coverage,
        training={"validation_esr": 0.01, "latency_samples": 0},
    )


def test_save_load_save_is_byte_identical(tmp_path):
    first = tmp_path / "a.json"
    second = tmp_path / "b.json"
    save_preset(_effect(), first)
    save_preset(load_preset(first), second)
    assert first.read_bytes() == second.read_bytes()


def test_loaded_effect_renders_like_the_original(tmp_path):
    effect = _effect()
    save_preset(effect, tmp_path / "a.json")
    loaded = load_preset(tmp_path / "a.json")
    x = (np.random.default_rng(1).standard_normal(20000) * 0.3).astype(np.float32)
    np.testing.assert_allclose(loaded(x, 44100), effect(x, 44100), atol=1e-6)


def test_physical_parameters_are_readable(tmp_path):
    effect = _effect()
    save_preset(effect, tmp_path / "a.json")
    loaded = load_preset(tmp_path / "a.json")
    document = json.loads((tmp_path / "a.json").read_text())
    assert document["format"] == FORMAT and document["version"] == 1  # no knobs: v1
    assert VERSION == 3
    stage = document["chain"]["stages"][1]
    assert stage["block"] == "tanh" and set(stage["ranges"][0]) == {"drive_db", "bias", "gain_db"}
    np.testing.assert_allclose(
        loaded[1].physical()[:, 0], [r["drive_db"] for r in stage["ranges"]], rtol=1e-6
    )
    assert loaded.ranges[0]["unit"] == "dBFS" and loaded.ranges[0]["n_ranges"] == 3


def _document() -> dict:
    return json.loads(dumps(_effect().to_document()))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(version=4), "unknown preset version 4"),
        (lambda d: d.update(format="other"), "not a lactose-audio preset"),
        (lambda d: d.pop("chain"), "missing field 'chain'"),
        (lambda d: d.update(extra=1), "unknown field"),
        (lambda d: d["chain"]["stages"][0].update(block="no_such_block"), "no_such_block"),
        (lambda d: d["chain"]["stages"][1]["ranges"][0].update(drive_db=1e6), "drive_db"),
        (lambda d: d["chain"]["stages"][2]["ranges"][0].update(cutoff_hz=5.0), "cutoff_hz"),
        (lambda d: d.update(sample_rate=-1), "sample_rate"),
        (lambda d: d["coverage"].pop(), "coverage"),
        (lambda d: d["chain"]["stages"][0]["ranges"].pop(), "rows"),
    ],
)
def test_invalid_documents_are_refused(mutate, message):
    document = _document()
    mutate(document)
    with pytest.raises(PresetError, match=message):
        validate_document(document, "p.json")


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_refused(tmp_path, text):
    raw = dumps(_effect().to_document())
    value = json.dumps(_document()["chain"]["stages"][0]["ranges"][0]["gain_db"])
    path = tmp_path / "p.json"
    path.write_text(raw.replace(value, text, 1))
    with pytest.raises(PresetError, match="p.json"):
        load_preset(path)


def test_malformed_files_are_refused(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(PresetError, match="not valid JSON"):
        load_preset(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(PresetError, match="expected a JSON object"):
        load_preset(tmp_path / "list.json")
    with pytest.raises(PresetError, match="no such preset"):
        load_preset(tmp_path / "missing.json")


def test_loading_never_executes_code(tmp_path):
    document = _document()
    document["description"] = "__import__('os').system('touch pwned')"
    document["chain"]["stages"][0]["block"] = "__import__('os')"
    path = tmp_path / "evil.json"
    path.write_text(json.dumps(document))
    with pytest.raises(PresetError):
        load_preset(path)
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()


def test_failed_save_leaves_existing_preset(tmp_path):
    path = tmp_path / "a.json"
    save_preset(_effect(), path)
    before = path.read_bytes()
    effect = _effect()
    effect.training["validation_esr"] = float("nan")
    with pytest.raises(PresetError):
        save_preset(effect, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_version_1_fixture_keeps_loading():
    effect = load_preset(FIXTURES / "preset_v1.json")
    assert effect.name == "fixture_v1"
    # Written by lactose_audio 0.1.0: 4 stages, amplitude-keyed, 3 ranges.
    assert [s.block.name for s in effect] == ["gain", "tanh", "lowpass", "highpass"]
    # The same document, values to float32 precision (banks hold float32 raw values, and a
    # block's declared range, hence its raw map, may widen between versions).
    _assert_same_document(
        effect.to_document(), json.loads((FIXTURES / "preset_v1.json").read_text())
    )


def _assert_same_document(got, expected, path="") -> None:
    if isinstance(expected, dict):
        assert isinstance(got, dict) and set(got) == set(expected), path
        for k in expected:
            _assert_same_document(got[k], expected[k], f"{path}/{k}")
    elif isinstance(expected, list):
        assert isinstance(got, list) and len(got) == len(expected), path
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            _assert_same_document(g, e, f"{path}[{i}]")
    elif isinstance(expected, float) and not isinstance(expected, bool):
        assert got == pytest.approx(expected, rel=1e-6, abs=1e-9), path
    else:
        assert got == expected, path


def test_shipped_presets_load_by_name_and_report_their_esr():
    names = [name for name, _ in list_presets()]
    assert len(names) >= 4, names
    for name in names:
        effect = load_preset(name)
        assert effect.description
        esr = effect.training["validation_esr"]
        assert 0.0 <= esr < 0.5, (name, esr)
        assert (SHIPPED_DIR / f"{name}.json").is_file()


def test_effect_is_list_like():
    effect = _effect()
    assert len(effect) == 3 and [s.block.name for s in effect] == ["gain", "tanh", "lowpass"]
    assert effect[2].block.name == "lowpass"
    assert "tanh" in repr(effect)


def test_document_copy_is_independent():
    document = _document()
    copied = copy.deepcopy(document)
    validate_document(document, "p.json")
    assert document == copied


def test_stage_params_are_per_range_physical_values():
    effect = _effect()
    params = effect[1].params
    assert list(params) == ["drive_db", "bias", "gain_db"]
    np.testing.assert_allclose(params["drive_db"], effect[1].physical()[:, 0])
    assert len(params["drive_db"]) == 3


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["chain"]["stages"][1]["ranges"][0].update(drive_db="12"), "finite number"),
        (lambda d: d["chain"]["stages"][1]["ranges"][0].update(drive_db=True), "a boolean"),
        (lambda d: d["chain"].update(hop_size=10**12), "hop_size must be an integer between"),
        (lambda d: d["chain"]["stages"][0]["edges"].update(extra=[]), "unknown field"),
        (lambda d: d["chain"]["stages"][0]["key"].update(extra=1), "stages\\[0\\].key"),
    ],
)
def test_strict_types_and_limits(mutate, message):
    document = _document()
    mutate(document)
    with pytest.raises(PresetError, match=message):
        validate_document(document, "p.json")


def test_json_depth_ignores_brackets_inside_strings():
    assert json_depth('{"a": "[[[[{{{{", "b": [[1]]}') == 3
    assert json_depth('["\\"[", {}]') == 2


def test_nested_coverage_is_per_stage_depth_first(tmp_path):
    chain = Chain([Chain.from_spec("gain>tanh"), Chain.from_spec("lowpass")])
    effect = Effect(chain=chain, coverage=[{"counts": [1], "flagged": [False]}] * 3)
    loaded = load_preset(save_preset(effect, tmp_path / "n.json"))
    assert len(loaded.coverage) == len(loaded.chain.stages) == 3 and len(loaded.ranges) == 3
