"""Rendering folders: render_files on any Executor, and `lactose render IN_DIR OUT_DIR`."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
import soundfile as sf

import lactose_audio
from lactose_audio import cli
from lactose_audio.batch import effect_from_text
from lactose_audio.chains import Chain
from lactose_audio.presets import Effect, dumps, save_preset

SR = 44100
DRIVE_DB, BIAS, OUT_DB = 12.0, 0.1, -3.0


def _db(value: float) -> float:
    return 10 ** (value / 20)


def _expected(x: np.ndarray) -> np.ndarray:
    """Closed form of the test preset: tanh(x * d + b) - tanh(b), times the output gain."""
    return _db(OUT_DB) * (np.tanh(x * _db(DRIVE_DB) + BIAS) - np.tanh(BIAS))


@pytest.fixture()
def preset(tmp_path):
    chain = Chain.from_spec("tanh")
    chain[0].set_physical([DRIVE_DB, BIAS, OUT_DB])
    effect = Effect(chain=chain, name="t", coverage=[{"counts": [1], "flagged": [False]}])
    return save_preset(effect, tmp_path / "t.json")


@pytest.fixture()
def takes(tmp_path):
    """A folder tree of takes (one per seed), one unreadable file, and a non-matching file."""
    root = tmp_path / "takes"
    signals = {}
    for i, rel in enumerate(["a.wav", "sub/b.wav", "sub/deeper/c.wav"]):
        x = (0.3 * np.random.default_rng(i).standard_normal(2000)).astype(np.float32)
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(root / rel, x, SR, subtype="FLOAT")
        signals[rel] = x
    (root / "sub" / "broken.wav").write_text("not audio")
    (root / "notes.txt").write_text("not matched by *.wav")
    return root, signals


def _check_outputs(out_dir, signals):
    for rel, x in signals.items():
        y, sr = sf.read(out_dir / rel, dtype="float32")
        assert sr == SR
        np.testing.assert_allclose(y, _expected(x), atol=1e-5)


def test_render_files_on_a_process_pool(preset, takes, tmp_path):
    root, signals = takes
    out_dir = tmp_path / "out"
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        result = lactose_audio.render_files(preset, root, out_dir, executor=pool)
    assert result.written == sorted(out_dir / rel for rel in signals)
    assert [p.name for p, _ in result.failed] == ["broken.wav"]
    assert "broken.wav" in result.failed[0][1] and "audio" in result.failed[0][1]
    _check_outputs(out_dir, signals)
    assert not (out_dir / "sub" / "broken.wav").exists() and not (out_dir / "notes.txt").exists()
    assert sorted(p.name for p in out_dir.rglob("*") if p.is_file()) == ["a.wav", "b.wav", "c.wav"]


def test_render_files_skips_existing_outputs_unless_overwrite(preset, takes, tmp_path):
    root, signals = takes
    out_dir = tmp_path / "out"
    (out_dir / "sub").mkdir(parents=True)
    (out_dir / "sub" / "b.wav").write_bytes(b"kept")
    result = lactose_audio.render_files(preset, root, out_dir)
    assert result.skipped == [out_dir / "sub" / "b.wav"]
    assert (out_dir / "sub" / "b.wav").read_bytes() == b"kept"
    assert len(result.written) == 2 and "skipped 1" in result.summary()
    result = lactose_audio.render_files(preset, root, out_dir, overwrite=True)
    assert result.skipped == [] and len(result.written) == 3
    _check_outputs(out_dir, signals)


def test_render_files_takes_a_list_and_a_pattern(preset, takes, tmp_path):
    root, signals = takes
    sf.write(root / "sub" / "d.flac", signals["a.wav"], SR)
    result = lactose_audio.render_files(preset, root, tmp_path / "o", pattern="*.flac")
    assert result.written == [tmp_path / "o" / "sub" / "d.flac"] and not result.failed
    files = [root / "sub" / "b.wav", root / "sub" / "deeper" / "c.wav"]
    result = lactose_audio.render_files(preset, files, tmp_path / "l")
    assert result.written == [tmp_path / "l" / "b.wav", tmp_path / "l" / "deeper" / "c.wav"]


def test_workers_build_the_preset_once_per_process(preset):
    text = dumps(lactose_audio.load_preset(preset).to_document())
    assert effect_from_text(text) is effect_from_text(text)


def test_cli_renders_a_folder_and_reports_every_failure(preset, takes, tmp_path, capsys):
    root, signals = takes
    (root / "empty.wav").write_bytes(b"")
    out_dir = tmp_path / "out"
    code = cli.main(["render", str(preset), str(root), str(out_dir), "--jobs", "1"])
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.splitlines()
    assert len(lines) == 2 and all(line.startswith("lactose: error: ") for line in lines)
    assert "empty.wav" in lines[0] and "broken.wav" in lines[1]  # sorted by path
    assert "rendered 3 file(s)" in captured.out and "2 failed" in captured.out
    _check_outputs(out_dir, signals)
    assert not any(p.name.startswith(".") for p in out_dir.rglob("*"))  # no temporary files


def test_cli_jobs_2_renders_here_and_in_a_worker(preset, tmp_path, capsys):
    """``--jobs 2``: one worker (forked on Linux, spawned elsewhere) plus this process, files in
    chunks; same outputs."""
    root = tmp_path / "many"
    signals = {}
    for i in range(24):
        x = (0.3 * np.random.default_rng(10 + i).standard_normal(3000)).astype(np.float32)
        rel = f"d{i % 3}/take{i:02d}.wav"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(root / rel, x, SR, subtype="FLOAT")
        signals[rel] = x
    (root / "d1" / "broken.wav").write_text("not audio")
    out_dir = tmp_path / "out"
    code = cli.main(["render", str(preset), str(root), str(out_dir), "--jobs", "2"])
    captured = capsys.readouterr()
    assert code == 2 and "rendered 24 file(s), 1 failed" in captured.out
    assert captured.err.count("lactose: error: ") == 1 and "broken.wav" in captured.err
    _check_outputs(out_dir, signals)


def test_work_here_warms_the_workers_first_and_chunks_shrink_to_the_end(preset, tmp_path):
    """With ``work_here`` the first submission is each worker's warm-up, before any files;
    chunks are taken by a quarter of each slot's share of what remains (at most 4 files), so
    they shrink to one file at the end and this process and the workers end together; every
    file is rendered once."""
    from concurrent.futures import ThreadPoolExecutor

    from lactose_audio.batch import MAX_CHUNK_FILES

    root = tmp_path / "in"
    root.mkdir()
    signals = {}
    for i in range(40):
        x = (0.3 * np.random.default_rng(100 + i).standard_normal(500)).astype(np.float32)
        sf.write(root / f"t{i:02d}.wav", x, SR, subtype="FLOAT")
        signals[f"t{i:02d}.wav"] = x
    out = tmp_path / "out"
    seen = []

    class Recording(ThreadPoolExecutor):
        def submit(self, fn, /, *args, **kwargs):
            seen.append((fn.__name__, len(args[2]) if fn.__name__ == "_render_chunk" else 0))
            return super().submit(fn, *args, **kwargs)

    with Recording(1) as pool:
        result = lactose_audio.render_files(preset, root, out, executor=pool, work_here=True)
    assert seen[0] == ("_warm_worker", 0)
    sizes = [n for name, n in seen if name == "_render_chunk"]
    assert sizes and max(sizes) <= MAX_CHUNK_FILES and sizes[-1] == 1
    assert sizes == sorted(sizes, reverse=True)  # taken from a shrinking remainder
    assert result.written == sorted(out / rel for rel in signals) and not result.failed
    _check_outputs(out, signals)


def test_render_files_reports_a_failed_rename_and_keeps_the_others(preset, takes, tmp_path):
    """A file whose rename fails after it was rendered (its destination is a folder) is
    reported with its input; the other files of its chunk are written."""
    root, signals = takes
    out = tmp_path / "out"
    (out / "sub" / "b.wav").mkdir(parents=True)  # a folder where the output would go
    result = lactose_audio.render_files(preset, root, out, overwrite=True)
    failed = {p.name: problem for p, problem in result.failed}
    assert set(failed) == {"b.wav", "broken.wav"}
    assert "b.wav" in failed["b.wav"] and "cannot write" in failed["b.wav"]
    assert result.written == sorted(out / rel for rel in signals if rel != "sub/b.wav")
    assert (out / "sub" / "b.wav").is_dir()


def test_work_here_with_nothing_to_render_skips_every_file(preset, tmp_path):
    """Every output exists already (no overwrite): nothing is rendered or submitted, each file
    is listed as skipped and the outputs are left as they were."""
    from concurrent.futures import ThreadPoolExecutor

    root = tmp_path / "in"
    root.mkdir()
    for i in range(3):
        x = (0.3 * np.random.default_rng(40 + i).standard_normal(2000)).astype(np.float32)
        sf.write(root / f"take{i}.wav", x, SR, subtype="FLOAT")
    out = tmp_path / "out"
    first = lactose_audio.render_files(preset, root, out)
    before = {p: p.read_bytes() for p in first.written}
    with ThreadPoolExecutor(1) as pool:
        again = lactose_audio.render_files(preset, root, out, executor=pool, work_here=True)
    assert len(first.written) == 3 and again.written == [] and not again.failed
    assert sorted(again.skipped) == first.written
    assert {p: p.read_bytes() for p in first.written} == before


def test_render_files_work_here_with_a_thread_pool(preset, takes, tmp_path):
    """The scheduler with ``work_here``: every file rendered once, failures returned."""
    from concurrent.futures import ThreadPoolExecutor

    root, signals = takes
    with ThreadPoolExecutor(1) as pool:
        result = lactose_audio.render_files(
            preset, root, tmp_path / "out", executor=pool, work_here=True
        )
    assert result.written == sorted(tmp_path / "out" / rel for rel in signals)
    assert [p.name for p, _ in result.failed] == ["broken.wav"]
    _check_outputs(tmp_path / "out", signals)
