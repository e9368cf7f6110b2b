"""``python -m hi_async bench --quick``: the report's structure, and every frame verified.

Runs the real benchmark (local stack in its own process, a real import, every client
mode as a subprocess) on a tiny study. Speed is not asserted: only that every mode ran
on the same frames, verified all of them, and that the report carries what it promises.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

CLIENT_RUNS = ("jph-0ms", "fmt-none", "fmt-jph", "fmt-npy", "fmt-raw", "fmt-dcm", "fmt-raw-1w",
               "fmt-none-1w", "sequential", "headline-none", "headline-none-sdk", "mr-1x",
               "mr-10x")


def _bench(tmp_path: Path, *extra: str) -> tuple[dict[str, Any], str]:
    """The bench as an installed package runs it: from an empty folder, writing its
    results to ./hi_async-bench/ there."""
    proc = subprocess.run(
        [sys.executable, "-m", "hi_async", "bench", "--quick", *extra],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    written = list((tmp_path / "hi_async-bench").glob("bench-quick-*.json"))
    assert len(written) == 1, proc.stdout[-2000:]
    assert [p.name for p in tmp_path.iterdir()] == ["hi_async-bench"]
    return json.loads(written[0].read_text()), proc.stdout


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    return _bench(tmp_path_factory.mktemp("bench"), "--rounds", "2")


def test_every_mode_verifies_every_frame_of_the_same_study(quick: tuple[dict, str]) -> None:
    doc, _ = quick
    runs = doc["runs"]
    study = doc["study"]
    everything = study["ct"]["frames"] + study["mr"]["frames"]
    assert study["mr"]["imageSets"] == 10
    for name in CLIENT_RUNS:
        run = runs[name]
        assert run["error"] is None, (name, run["error"])
        assert run["frames"] > 0 and run["verified"] == run["frames"], name
    assert runs["headline-none"]["frames"] == everything
    for fmt in ("none", "jph", "npy", "raw", "dcm"):
        assert runs[f"fmt-{fmt}"]["frames"] == everything, fmt
    assert len(runs["fmt-raw"]["workers"]) >= 1 and not runs["fmt-raw-1w"]["workers"]
    for name in ("fmt-none", "fmt-jph", "fmt-npy", "fmt-raw", "fmt-raw-1w", "fmt-none-1w"):
        rounds = runs[name]["rounds"]  # --rounds 2: both kept, the slower one chosen
        assert len(rounds) == 2 and all(r["verified"] == everything for r in rounds), name
        assert runs[name]["framesPerSecond"] == min(r["framesPerSecond"] for r in rounds)
        # Each run's files were dropped from the page cache once it ended.
        assert all(r["cachedMBDropped"] is not None and r["cachedMBDropped"] >= 0
                   for r in rounds), name
    assert runs["sequential"]["frames"] == everything  # --quick: the whole tiny study
    assert runs["mr-10x"]["frames"] == 10 * runs["mr-1x"]["frames"] == study["mr"]["frames"]
    groups = runs["ceiling"]["groups"]
    assert groups["all"]["frames"] == everything
    for name, group in groups.items():
        assert group["verified"] == group["frames"] > 0, name
    assert doc["derived"]["allFramesVerified"] is True


def test_marginal_cpu_is_measured_in_every_round_beside_its_bare_decode(
        quick: tuple[dict, str]) -> None:
    doc, stdout = quick
    rounds = doc["marginalCpu"]
    assert len(rounds) == 2  # --rounds 2
    mr = doc["study"]["mr"]["frames"]
    for r in rounds:
        assert r["latencyMs"] == 5.0 and r["bareCpuMsPerFrame"] > 0
        assert r["ten"]["frames"] == r["ten"]["verified"] == mr == 10 * r["one"]["frames"]
        assert r["one"]["verified"] == r["one"]["frames"]
        per_frame = ((r["ten"]["cpuSeconds"] - r["one"]["cpuSeconds"]) * 1000
                     / (r["ten"]["frames"] - r["one"]["frames"]))
        assert r["marginalCpuMsPerFrame"] == pytest.approx(per_frame, abs=1e-3)
        assert r["ratio"] == pytest.approx(per_frame / r["bareCpuMsPerFrame"], abs=1e-3)
        # The floor client ran on the same MR frames, verified them all, and its ratios
        # are of its own figures.
        floor = r["floor"]
        assert floor["frames"] == floor["verified"] == mr and floor["cpuMsPerFrame"] > 0
        assert r["floorVsBare"] == pytest.approx(
            floor["cpuMsPerFrame"] / r["bareCpuMsPerFrame"], abs=1e-3)
        assert r["vsFloor"] == pytest.approx(per_frame / floor["cpuMsPerFrame"], abs=1e-3)
    derived = doc["derived"]
    assert derived["floorVsBareRounds"] == [r["floorVsBare"] for r in rounds]
    assert derived["floorVsBare"] == min(r["floorVsBare"] for r in rounds)
    assert derived["marginalCpuVsFloor"] == min(r["vsFloor"] for r in rounds)
    assert derived["marginalCpuVsBareRounds"] == [r["ratio"] for r in rounds]
    # Of two rounds, the lower: the median round of an even count is its lower middle.
    assert derived["marginalCpuVsBare"] == min(r["ratio"] for r in rounds)
    assert derived["marginalCpuMsPerFrameAtLatency"] is not None
    assert "ratios by round" in stdout and "the floor client" in stdout


def test_each_round_records_what_a_frame_file_costs_the_file_system(
        quick: tuple[dict, str]) -> None:
    doc, stdout = quick
    probes = doc["fileCreate"]["rounds"]
    assert len(probes) == 2  # --rounds 2: one probe at the start of each
    for probe in probes:
        assert probe["files"] == 200 and probe["bytesPerFile"] == 256 * 256 * 2
        assert probe["cpuMicrosecondsPerFile"] > 0 and probe["microsecondsPerFile"] > 0
        assert probe["pagesMicrosecondsPerFile"] > 0
    assert doc["fileCreate"]["fileSystem"]  # the bench's temporary folder is on one
    derived = doc["derived"]
    assert derived["fileCreateMicrosecondsRounds"] == [p["microsecondsPerFile"] for p in probes]
    assert derived["fileCreateMicroseconds"] == min(derived["fileCreateMicrosecondsRounds"])
    pages = [p["pagesMicrosecondsPerFile"] for p in probes]
    assert derived["filePagesMicrosecondsRounds"] == pages
    assert "creating one 128 KiB frame file in the runs' folder" in stdout
    assert f"new page-cache pages alone (the same written into one file): {pages}" in stdout


def test_raw_over_none_is_also_given_round_by_round(quick: tuple[dict, str]) -> None:
    doc, stdout = quick
    raw, none = doc["runs"]["fmt-raw"]["rounds"], doc["runs"]["fmt-none"]["rounds"]
    expected = [round(r["framesPerSecond"] / n["framesPerSecond"], 3)
                for r, n in zip(raw, none, strict=True)]
    assert doc["derived"]["rawVsNoneRounds"] == expected and len(expected) == 2
    assert doc["derived"]["rawVsPeerRounds"] is None  # no C++ sample in this run
    assert f"- by round: raw / none {expected}" in stdout


def test_the_file_probe_writes_whole_frame_files_and_keeps_them(tmp_path: Path) -> None:
    from hi_async.bench import file_cost

    figures = file_cost.probe(tmp_path, files=7, nbytes=4096)
    assert figures["files"] == 7 and figures["microsecondsPerFile"] > 0
    assert figures["pagesMicrosecondsPerFile"] > 0
    written = sorted(tmp_path.glob("*.raw"))
    assert [p.name for p in written] == [f"{n:05d}.raw" for n in range(7)]
    assert all(p.read_bytes() == bytes(4096) for p in written)  # no .tmp left, none cut
    # The pages-only probe: the same bytes, appended to one file, kept.
    assert (tmp_path / "pages.bin").read_bytes() == bytes(7 * 4096)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [p.name for p in written] + ["pages.bin"])


def test_each_run_starts_with_what_earlier_runs_left_dirty_written_back(
        tmp_path: Path) -> None:
    from hi_async.bench import clients, file_cost

    if file_cost.file_system(tmp_path) in ("tmpfs", "ramfs"):
        pytest.skip("the temporary folder is in memory: nothing there is ever dirty")
    # 32 MB written without a sync, as the C++ sample leaves its files.
    with open(tmp_path / "unsynced", "wb") as fh:
        fh.write(os.urandom(32 << 20))
    target = clients.Target("http://127.0.0.1:1", os.getpid(), tmp_path)
    before = target.settle()
    assert before is not None and before >= 16  # the file's pages were dirty
    after = clients.dirty_megabytes()
    assert after is not None and after < before


def _resident_pages(path: Path) -> int:
    """How many of the file's pages are in the page cache (``mincore`` of a mapping)."""
    import ctypes
    import mmap

    size = path.stat().st_size
    pages = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    vec = (ctypes.c_ubyte * pages)()
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), size, access=mmap.ACCESS_COPY) as mm:
        start = ctypes.c_char.from_buffer(mm)  # mapped, not touched: nothing is read in
        try:
            assert libc.mincore(ctypes.addressof(start), size, vec) == 0, ctypes.get_errno()
        finally:
            del start
    return sum(v & 1 for v in vec)


def test_a_retired_run_keeps_its_files_but_not_their_pages(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hi_async.bench import clients, file_cost

    if file_cost.file_system(tmp_path) in ("tmpfs", "ramfs"):
        pytest.skip("the temporary folder is in memory: its files are nowhere else")
    monkeypatch.setattr(clients, "KEEP_OUTPUT_MIN_FREE", 0)  # kept, whatever the disk
    run = tmp_path / "peer-raw-16.1"
    frame = run / "set" / "frame.raw"
    frame.parent.mkdir(parents=True)
    data = os.urandom(8 << 20)
    frame.write_bytes(data)  # not synced, as the C++ sample leaves its files
    assert _resident_pages(frame) > 0
    target = clients.Target("http://127.0.0.1:1", os.getpid(), tmp_path)
    dropped = target.retire(run)
    assert dropped is not None and dropped >= 0
    assert _resident_pages(frame) == 0
    assert frame.read_bytes() == data  # written back first: nothing lost


def test_the_file_system_of_a_folder_comes_from_the_mount_table(tmp_path: Path) -> None:
    from hi_async.bench import file_cost

    assert file_cost.file_system(Path("/proc/self")) == "proc"
    mounts = Path("/proc/self/mounts").read_text().split()
    assert file_cost.file_system(tmp_path) in mounts  # a type listed there, not a guess
    assert file_cost.mount_point(r"/mnt/scans\040of\011May\134x") == "/mnt/scans of\tMay\\x"


def test_dicom_export_is_measured_against_jph_on_the_same_frames(
        quick: tuple[dict, str]) -> None:
    doc, stdout = quick
    dcm = doc["runs"]["fmt-dcm"]
    study = doc["study"]
    # One instance per frame in the bench's series (single-frame CT and MR slices).
    instances = study["ct"]["frames"] + study["mr"]["frames"]
    assert dcm["dicom"]["instances"] == dcm["dicom"]["written"] == instances
    assert dcm["dicom"]["failed"] == 0
    assert dcm["instancesPerSecond"] > 0 and dcm["framesPerSecond"] > 0
    derived = doc["derived"]
    assert derived["dcmVsJph"] == round(dcm["framesPerSecond"]
                                        / doc["runs"]["fmt-jph"]["framesPerSecond"], 3)
    assert derived["dcmInstancesPerSecond"] == dcm["instancesPerSecond"]
    assert "DICOM export (--format dcm" in stdout and "instances/s" in stdout


def test_each_client_run_is_measured_with_the_emulator_beside_it(quick: tuple[dict, str]) -> None:
    doc, _ = quick
    for name in CLIENT_RUNS:
        run = doc["runs"][name]
        assert run["wallSeconds"] > 0 and run["cpuSeconds"] > 0, name
        assert run["peakRssBytes"] > 0, name
        assert run["emulator"]["cpuSeconds"] >= 0, name
        expected = 0.0 if name == "jph-0ms" else 5.0 if name.startswith("fmt-") else 50.0
        assert run["config"]["latencyMs"] == expected, name
        if run["mode"] == "hi_async":  # written back before it started, and how much
            assert run["dirtyMBBefore"] >= 0, name
    none = doc["runs"]["headline-none"]
    assert none["startupSeconds"] is not None and none["startupSeconds"] < none["wallSeconds"]
    stages = none["stages"]
    assert set(stages["busySeconds"]) >= {"metadata", "sink"}
    assert stages["bottleneck"] in ("metadata", "frames", "sink")
    assert stages["clientCoresUsed"] > 0


def test_report_has_machine_versions_targets_and_import_throughput(
        quick: tuple[dict, str]) -> None:
    doc, stdout = quick
    assert doc["machine"]["cores"] >= 1 and doc["machine"]["cpuModel"] is not None
    for package in ("python", "hi_async", "botocore", "aiobotocore", "imagecodecs", "numpy"):
        assert doc["versions"][package], package
    assert doc["settings"]["quick"] is True
    targets = {t["metric"]: t for t in doc["derived"]["targets"]}
    peer_targets = ("rawVsPeer", "jphVsPeer", "jphVsPeerRaw")
    assert set(targets) == {*peer_targets, "rawVsNone", "marginalCpuVsBare",
                            "speedupVsSequential", "peakRssRatio", "emulatorMaxCoreShare"}
    for name, t in targets.items():
        if name in peer_targets:  # no --peer-cpp here: skipped, and says so
            assert t["status"] == "SKIPPED" and t["value"] is None
            continue
        assert t["status"] in ("PASS", "MISS") and isinstance(t["value"], float), name
    assert any("--peer-cpp" in note for note in doc["notes"])
    ceiling = doc["runs"]["ceiling"]["groups"]["mr"]
    assert ceiling["pureDecodeCpuMsPerFrame"] > 0 and ceiling["bareCpuMsPerFrame"] > 0
    assert "note" in targets["speedupVsSequential"]  # the tiny study is below 2000 frames
    for group in ("ct", "mr"):
        assert doc["study"][group]["importJob"]["instancesPerSecond"] > 0
    standalone = doc["standalone"]
    assert standalone["importThroughput"]["result"]["status"] == "COMPLETED"
    assert standalone["emulatorFrames"]["result"]["failed"] == 0
    assert "sweeps skipped" in " ".join(doc["notes"])
    assert "| hi_async / sequential frames/s at 50 ms |" in stdout
    assert "ceiling (all)" in stdout


@pytest.mark.slow
def test_quick_sweep_covers_each_factor_and_plots(tmp_path: Path) -> None:
    doc, stdout = _bench(tmp_path, "--sweep", "--plot", "--no-standalone")
    sweep = doc["runs"]["sweep"]
    grid = [r for r in sweep if r["sweep"] == "latency-fetchers"]
    assert {(r["config"]["latencyMs"], r["config"]["fetchers"]) for r in grid} == {
        (0.0, 1), (0.0, 16), (50.0, 1), (50.0, 16)}
    assert {r["factor"] for r in sweep if r["sweep"] == "one-factor"} == {
        "decoders-1", "decoders-2", "pool-process", "pool-thread", "uvloop-on", "uvloop-off",
        "frame-client-lean", "frame-client-sdk"}
    for r in sweep:
        assert r["verified"] == r["frames"] > 0, r["label"]
    assert doc["standalone"] == "skipped"
    png = next((tmp_path / "hi_async-bench").glob("bench-quick-*.json")).with_suffix(".png")
    if "plot written" in stdout:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert "plot skipped: matplotlib is not installed" in stdout


PEER = os.environ.get("HI_ASYNC_PEER_CPP")


@pytest.mark.skipif(not PEER, reason="set HI_ASYNC_PEER_CPP to AWS's C++ sample (ahi-retrieve) "
                    "to run it as a column (peers.md tells how to build it)")
def test_the_cpp_sample_runs_as_a_column_on_the_same_frames(tmp_path: Path) -> None:
    doc, stdout = _bench(tmp_path, "--peer-cpp", str(PEER), "--no-standalone")
    everything = doc["study"]["ct"]["frames"] + doc["study"]["mr"]["frames"]
    for fmt in ("raw", "jph"):
        run = doc["runs"][f"peer-{fmt}"]
        assert run["error"] is None, run["error"]
        assert run["expectedFrames"] == everything
        # It can exit before its decode pool wrote the last frame or two (peers.md).
        assert everything - 2 <= run["frames"] <= everything, fmt
        assert {t["label"] for t in run["tries"]} == {f"peer-{fmt}-c16", f"peer-{fmt}-c64"}
        assert run["dirtyMBBefore"] >= 0, fmt
        # It keeps every page it wrote; the bench drops them once the run ends.
        assert run["cachedMBDropped"] is not None and run["cachedMBDropped"] >= 0, fmt
    targets = {t["metric"]: t for t in doc["derived"]["targets"]}
    for name in ("rawVsPeer", "jphVsPeer", "jphVsPeerRaw"):
        assert targets[name]["status"] in ("PASS", "MISS"), name
    assert "| peer-raw |" in stdout


def test_the_median_round_is_kept_and_a_failed_round_is_not_hidden() -> None:
    from hi_async.bench.report import derive, median_round

    def run(fps: float, verified: int = 10) -> dict[str, Any]:
        return {"mode": "hi_async", "framesPerSecond": fps, "frames": 10,
                "verified": verified, "cpuMsPerFrame": 1.0, "wallSeconds": 10 / fps}

    kept = median_round([run(300.0), run(100.0), run(200.0)])
    assert kept["framesPerSecond"] == 200.0
    assert [r["framesPerSecond"] for r in kept["rounds"]] == [300.0, 100.0, 200.0]
    assert derive({"fmt-raw": kept}, 50.0, 5.0)["allFramesVerified"]
    short = median_round([run(300.0, verified=9), run(100.0), run(200.0)])
    assert short["verified"] == 10  # the median round verified all: the other did not
    assert not derive({"fmt-raw": short}, 50.0, 5.0)["allFramesVerified"]


def test_the_bench_writes_the_packages_bytecode_before_it_measures() -> None:
    """Runs from a checkout under PYTHONDONTWRITEBYTECODE=1 would otherwise compile every
    module at each start, in each worker too: a cost no installed copy pays."""
    import importlib.util

    import hi_async
    from hi_async.bench import main as bench_main

    folder = Path(hi_async.__file__).parent
    cached = [Path(importlib.util.cache_from_source(str(path)))
              for path in folder.rglob("*.py")]
    for pyc in cached:
        pyc.unlink(missing_ok=True)
    assert bench_main._compile_package() is None
    assert all(pyc.is_file() for pyc in cached)


def test_the_floor_client_names_an_endpoint_nobody_answers_at(tmp_path: Path) -> None:
    env = dict(os.environ, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")
    proc = subprocess.run(
        [sys.executable, "-m", "hi_async.bench.floor_client", "--endpoint-url",
         "http://127.0.0.1:9", "--datastore-id", "x", "--image-set-id", "y"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == "floor client: cannot connect to http://127.0.0.1:9"
