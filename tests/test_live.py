"""The live view (issue 15, item 3): ``python -m insitu.live OUT.h5`` in a
real headless browser (Debian's chromium and chromium-driver, driven by
selenium) during a running 2-rank job.

The viewer starts before the file exists (it must wait for it), the page
must show a time series with at least N points while the run runs, and
more on a later poll; a screenshot is saved as the test's artifact (and,
with ``INSITU_LIVE_SCREENSHOT=docs/img/live.png``, for the README).
Where chromium cannot be installed the browser test is skipped, saying why;
``scripts/install.sh`` installs it, so under ``./scripts/test.sh`` it runs.
"""
import os
import shutil
import time

import pytest

from conftest import PYTHON, ROOT, mpi_env, run
from live_runs import background, finish, run_args, wait_until, write_config

PACED = f"{ROOT / 'tests' / 'mpi_programs' / 'paced_heat.py'}:PacedHeat"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
MIN_POINTS = 20

#: the number of points of a series in the page, read from BokehJS's models
#: (-1: Bokeh has not loaded the document yet, -2: no such series)
COUNT_JS = """
const D = window.Bokeh && Bokeh.documents && Bokeh.documents[0];
if (!D) return -1;
const s = D.get_model_by_name(arguments[0]);
return s ? s.data.x.length : -2;
"""


def _browser():
    """A headless chromium driven by selenium, or a skip that says what is
    missing (never a silent pass)."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError as exc:
        pytest.skip(f"selenium is not installed ({exc}); ./scripts/install.sh installs it")
    missing = [p for p in (CHROMIUM, DRIVER) if not os.path.exists(p)]
    if missing:
        pytest.skip(f"no {', '.join(missing)}: Debian's chromium and chromium-driver could not "
                    "be installed here (./scripts/install.sh installs them with apt)")
    opts = Options()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1200,1900"):
        opts.add_argument(arg)
    opts.binary_location = CHROMIUM
    return webdriver.Chrome(service=Service(DRIVER), options=opts)


def _start_viewer(out, viewer):
    """The URL the viewer prints once it listens (port 0: any free port)."""
    line = wait_until(lambda: viewer.stdout.readline() or viewer.poll() is not None,
                      60, "the viewer's URL")
    assert isinstance(line, str) and "http://127.0.0.1:" in line, line
    return line.split(" at ", 1)[1].strip()


def test_live_page_grows_while_a_two_rank_job_runs(tmp_path):
    out = tmp_path / "live.h5"
    cfg = write_config(tmp_path, out, flush=10)
    cmd = ["mpiexec", "-n", 2, *run_args(cfg, 1500, shape=(96, 128))]
    cmd[cmd.index("heat2d")] = PACED
    driver = _browser()
    try:
        with background([PYTHON, "-m", "insitu.live", out, "--port", 0,
                         "--interval", 0.5]) as viewer:
            url = _start_viewer(out, viewer)  # before the file exists
            assert not out.exists()
            with background(cmd, env=mpi_env({"INSITU_TEST_STEP_SECONDS": "0.02"})) as job:
                driver.set_page_load_timeout(60)
                driver.get(url)
                first = wait_until(
                    lambda: (driver.execute_script(COUNT_JS, "series_T_mean") or 0) >= MIN_POINTS
                    and driver.execute_script(COUNT_JS, "series_T_mean"),
                    120, f"a time series of at least {MIN_POINTS} points in the page")
                assert job.poll() is None, "the run ended before the page showed it live"
                time.sleep(3)
                later = driver.execute_script(COUNT_JS, "series_T_mean")
                assert later > first, (first, later)
                shot = tmp_path / "live.png"
                driver.save_screenshot(str(shot))
                finish(job, 300, "the 2-rank run")
            # after the run: the page reaches every row and says it finished
            wait_until(lambda: driver.execute_script(COUNT_JS, "series_T_mean") == 1500, 60,
                       "all 1500 rows in the page")
            status = driver.execute_script(
                "return Bokeh.documents[0].get_model_by_name('status').text")
            assert "finished" in status and ">1500<" in status, status
            # the viewer only reads: its polls leave the finished file untouched
            before = (out.stat().st_mtime_ns, out.stat().st_size)
            time.sleep(2)
            assert (out.stat().st_mtime_ns, out.stat().st_size) == before
            for name in ("map", "histogram", "windows"):
                assert driver.execute_script(
                    f"return !!Bokeh.documents[0].get_model_by_name('{name}')"), name
            final = tmp_path / "live_final.png"
            driver.save_screenshot(str(final))
    finally:
        driver.quit()
    assert shot.stat().st_size > 10_000
    target = os.environ.get("INSITU_LIVE_SCREENSHOT")
    if target:
        shutil.copy(shot, ROOT / target)


def test_viewer_listens_on_localhost_and_warns_for_other_addresses(tmp_path):
    from insitu.live.__main__ import is_loopback, parse_args
    assert parse_args(["x.h5"]).host == "127.0.0.1"
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")
    with background([PYTHON, "-m", "insitu.live", tmp_path / "none.h5", "--port", 0,
                     "--host", "0.0.0.0"]) as viewer:
        _start_viewer(tmp_path / "none.h5", viewer)
        viewer.terminate()
        _, err = viewer.communicate(timeout=30)
    assert "without authentication" in err, err


def test_run_live_starts_the_viewer_and_prints_its_url(tmp_path):
    out = tmp_path / "run_live.h5"
    cfg = write_config(tmp_path, out, flush=10)
    r = run(["mpiexec", "-n", 2, *run_args(cfg, 30, shape=(48, 64)), "--live", 0],
            timeout=180)
    assert "insitu.live: serving" in r.stderr and "http://127.0.0.1:" in r.stderr, r.stderr
