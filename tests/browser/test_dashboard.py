"""The dashboard end to end in real headless Chromium (Debian's /usr/bin/chromium driven by
Playwright; no downloaded browser, background networking, sync and component updates off):
a coordinator and a worker on 127.0.0.1, a grid submitted through the page, a loss curve that
grows live, a run cancelled and retried from its page, the heatmap filled. Assertions are on the
DOM; screenshots are kept in build/test-artifacts/ for people to look at."""
import json
import pathlib
import re
import subprocess
import sys

import pytest
from playwright.sync_api import expect, sync_playwright

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "integration"))
from cluster import BUILD_DIR, Coordinator, make_grid, start_worker  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = BUILD_DIR / "test-artifacts"


@pytest.fixture
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-background-networking", "--disable-sync", "--disable-component-update",
            "--disable-default-apps", "--no-first-run", "--disable-domain-reliability"])
        yield b
        b.close()


def shot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}.png"), full_page=True)


def test_submit_watch_cancel_retry_in_the_browser(tmp_path, browser):
    coordinator = Coordinator(tmp_path / "store.db", tmp_path / "artifacts", extra=["--http", "127.0.0.1:0"])
    worker = None
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("dialog", lambda dialog: dialog.accept(coordinator.token))  # the token, asked once
        page.goto(coordinator.url)
        expect(page.locator("#live")).to_have_text("live")

        grid = json.loads(make_grid(tmp_path, "browser", [0, 1], 30).read_text())
        page.fill("#grid-text", json.dumps(grid))
        page.click("#submit-grid")
        expect(page).to_have_url(re.compile(r"#/sweep/browser$"))
        expect(page.locator("#sweep-counts")).to_have_text("queued 2")
        expect(page.locator("#heatmap td.cell")).to_have_count(1)
        shot(page, "1-submitted")

        worker = start_worker(coordinator.endpoint, tmp_path, "w1")
        page.goto(f"{coordinator.url}#/run/1")
        loss = page.locator("#loss-chart")
        expect(loss).to_have_attribute("data-points", re.compile(r"^([3-9]|\d\d+)$"), timeout=120_000)  # grows live
        expect(page.locator("#run-state")).to_have_text("running")
        shot(page, "2-curve")
        expect(page.locator("#checkpoints tr")).to_have_count(2, timeout=60_000)  # the step-10 checkpoint is stored

        page.click("#cancel")
        expect(page.locator("#run-state")).to_have_text("canceled", timeout=30_000)
        shot(page, "3-canceled")

        page.goto(f"{coordinator.url}#/sweep/browser")
        filled = page.locator("#heatmap td.cell[data-mean]:not([data-mean=''])")
        expect(filled).to_have_count(1, timeout=120_000)  # run 2 finished: the cell has a mean
        expect(page.locator("#sweep-counts")).to_have_text(re.compile("succeeded 1"))

        page.goto(f"{coordinator.url}#/run/1")
        page.click("#retry")
        expect(page.locator("#run-state")).to_have_text("succeeded", timeout=180_000)
        resumed = page.locator("#attempts tr").nth(2).locator("td").nth(3)
        expect(resumed).to_have_text(re.compile(r"^[1-9]\d*$"))  # the retry resumed from the stored checkpoint
        expect(page.locator("#checkpoints a").first).to_have_attribute("href", re.compile(r"/api/runs/1/checkpoints/\d+/"))
        expect(page.locator("#run-result")).to_contain_text("test AUC movie")
        # A succeeded run offers neither Cancel nor Retry; attempts are numbered within the run;
        # the AUC axis is AUC's range, not Chart.js's guess around one point.
        expect(page.locator("#cancel")).to_be_disabled()
        expect(page.locator("#retry")).to_be_disabled()
        expect(page.locator("#attempts tr").nth(1).locator("td").first).to_have_text(re.compile(r"^1 \(id \d+\)$"))
        expect(page.locator("#attempts tr").nth(2).locator("td").first).to_have_text(re.compile(r"^2 \(id \d+\)$"))
        assert page.evaluate("[charts['val-auc-chart'].chart.options.scales.y.min, charts['val-auc-chart'].chart.options.scales.y.max]") == [0, 1]
        assert page.evaluate("charts['loss-chart'].chart.data.datasets.map((d) => d.label)") == ["attempt 1", "attempt 2"]
        # Every recorded series, the resolved spec, the sweep as a link, the best checkpoint, the events.
        for chart in ("lr-chart", "grad-norm-chart", "tokens-per-s-chart", "memory-bytes-chart"):
            expect(page.locator(f"#{chart}")).to_have_attribute("data-points", re.compile(r"^[1-9]\d*$"))
        assert json.loads(page.locator("#grid-run").inner_text())["domain"] == "movie"
        settings = json.loads(page.locator("#run-spec").inner_text())  # the trainer's, defaults included
        assert settings["warmup_steps"] == 20 and settings["lora"]["r"] == 8 and settings["scoring"] == "tallrec"
        expect(page.locator("a.sweep-link")).to_have_attribute("href", "#/sweep/browser")
        expect(page.locator("#checkpoints tr.best")).to_have_count(1)
        expect(page.locator("#events tr").filter(has_text="finished")).to_have_count(1)
        check_event_log(page)
        shot(page, "4-retried")

        page.goto(f"{coordinator.url}#/sweep/browser")
        expect(filled).to_have_count(1)
        expect(page.locator("#heatmap td.cell")).to_have_attribute("title", re.compile("over 2 runs"), timeout=30_000)
        expect(page.locator("#sweep-counts")).to_have_text("succeeded 2")
        page.goto(coordinator.url)  # the sweeps list: its bar is all green, by outcome
        bar = page.locator("tr[data-sweep=browser] .progress .part[data-state=succeeded]")
        assert bar.evaluate("(e) => e.style.width") == "100%"
        assert page.locator("tr[data-sweep=browser] .progress .part[data-state=failed]").evaluate("(e) => e.style.width") == "0%"
        page.goto(f"{coordinator.url}#/sweep/browser")
        # The runs table: results per run, sortable by a click on a column.
        val = page.locator("#runs td[data-column='val AUC']")
        expect(val).to_have_count(2)
        assert all(re.match(r"^0\.\d{4}$", t) for t in val.all_inner_texts())
        expect(page.locator("#export a").first).to_have_attribute("href", "/api/sweeps/browser/table?format=csv")
        # The page's CSV export downloads what `tallrec results --format csv` prints.
        with page.expect_download() as download:
            page.locator("#export a").first.click()
        cli = subprocess.run([str(BUILD_DIR / "tallrec"), "results", "browser", "--db", str(tmp_path / "store.db"),
                              "--format", "csv"], capture_output=True, text=True, check=True)
        assert pathlib.Path(download.value.path()).read_text() == cli.stdout
        page.click("#runs th[data-column='val AUC']")
        expect(page.locator("#runs th[data-column='val AUC']")).to_have_text("val AUC ▲")
        # Test AUC against an axis: one line (train movie -> movie) over the sample count.
        expect(page.locator("#axis-chart")).to_have_attribute("data-lines", "1")
        # Compare: both runs' curves overlaid.
        for box in page.locator("#runs input.pick").all():
            box.check()
        page.click("#compare")
        expect(page).to_have_url(re.compile(r"#/compare/\d+,\d+$"))
        expect(page.locator("#compare-loss")).to_have_attribute("data-lines", "2")
        assert page.evaluate("charts['compare-loss'].chart.data.datasets.every((d) => d.data.length > 0)")
        page.goto(f"{coordinator.url}#/sweep/browser")
        shot(page, "5-heatmap")

        page.goto(f"{coordinator.url}#/workers")
        expect(page.locator("#workers tr[data-worker=w1] td").nth(2)).to_have_text("alive")
        shot(page, "6-workers")
    finally:
        if worker:
            worker.terminate()
            worker.wait(timeout=60)
        coordinator.stop()


def check_event_log(page):
    """The run page of run 1 (canceled after its step-10 checkpoint, retried to the end) shows its
    events as a log: a sentence a line, progress summarised, the raw event a click away."""
    line = lambda kind: page.locator(f"#events tr.event-{kind} summary")  # noqa: E731
    started = line("started")
    expect(started).to_have_count(2)
    expect(started.first).to_have_text(re.compile(r"^Attempt 1 started on w1: \d+ records, \d+ steps, micro-batch 4 x 1, "
                                                  r"\d+ threads?, [\d,]+ trainable parameters$"))
    expect(started.nth(1)).to_have_text(re.compile(r"^Attempt 2 started on w1: .*micro-batch 4 x 1, resumed from step [1-9]\d*, "))
    expect(line("eval").first).to_have_text(re.compile(r"^Step \d+: validation AUC [01]\.\d{4}"))
    expect(line("checkpoint").first).to_have_text(re.compile(r"^Step \d+: checkpoint saved$"))
    expect(line("attempt-ended")).to_have_text(["Attempt 1 canceled"])
    expect(line("finished")).to_have_text(re.compile(r"^Finished: test AUC movie [01]\.\d{4}; best validation AUC "))
    # Consecutive progress events are one line each: fewer lines than steps trained.
    expect(line("progress").first).to_have_text(re.compile(r"^Steps? \d+(–\d+)?: loss \d+\.\d{3}"))
    assert line("progress").count() < int(page.locator("#loss-chart").get_attribute("data-points"))
    # No raw JSON on show: every visible cell reads as text.
    cells = page.locator("#events td").all_inner_texts()
    assert cells and not any(t.strip().startswith("{") for t in cells), cells
    # A click on a line shows the event as the trainer sent it.
    raw = page.locator("#events tr.event-finished pre.raw")
    expect(raw).to_be_hidden()
    line("finished").click()
    expect(raw).to_be_visible()
    expect(raw).to_contain_text('"type"')
    event = json.loads(raw.inner_text())
    assert event["type"] == "finished" and set(event["test_auc"]) == {"movie"}


def submit_in_page(browser, coordinator, grid, runs):
    """A new page on the dashboard (the token given when asked) that submits `grid`; returns it once
    the sweep page shows its `runs` queued."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("dialog", lambda dialog: dialog.accept(coordinator.token))
    page.goto(coordinator.url)
    page.fill("#grid-text", json.dumps(grid))
    page.click("#submit-grid")
    expect(page.locator("#sweep-counts")).to_have_text(f"queued {runs}", timeout=30_000)
    return page


def test_a_ten_thousand_run_sweep_pages_its_runs(tmp_path, browser):
    """10,000 runs: the page holds one heatmap cell per grid point and one page of runs, not 10,000 rows."""
    grid = json.loads(make_grid(tmp_path, "big", list(range(100)), 2, samples=[16 * k for k in range(1, 51)]).read_text())
    grid["domains"], grid["datasets"]["book"] = ["movie", "book"], grid["datasets"]["movie"]
    coordinator = Coordinator(tmp_path / "store.db", tmp_path / "artifacts", extra=["--http", "127.0.0.1:0"])
    try:
        page = submit_in_page(browser, coordinator, grid, 10000)
        # One cell per (train -> test) row the runs have x sample count: without test_domains each run
        # is tested on its own domain, so 2 rows (movie -> movie, book -> book) x 50 samples.
        expect(page.locator("#heatmap td.cell")).to_have_count(2 * 50)
        expect(page.locator("#runs tr[data-run]")).to_have_count(50)
        page.get_by_text("next ›").click()
        expect(page).to_have_url(re.compile(r"#/sweep/big/1$"))
        expect(page.locator("#runs tr[data-run]").first).to_have_attribute("data-run", "51")
        page.select_option("#state-filter", "failed")
        expect(page.locator("#runs tr[data-run]")).to_have_count(0)
        shot(page, "7-ten-thousand")
    finally:
        coordinator.stop()


def test_a_two_setting_grid_shows_two_rows_and_its_axis(tmp_path, browser):
    """lr 1e-4 and 3e-4: two settings, so two heatmap rows labelled by lr, and lr a column of the runs."""
    grid = json.loads(make_grid(tmp_path, "two", [0, 1], 2).read_text())
    grid["hyper"]["lr"] = [0.0001, 0.0003]
    coordinator = Coordinator(tmp_path / "store.db", tmp_path / "artifacts", extra=["--http", "127.0.0.1:0"])
    try:
        page = submit_in_page(browser, coordinator, grid, 4)
        rows = page.locator("#heatmap tr th").all_inner_texts()
        assert "lr=0.0001 | movie → movie" in rows and "lr=0.0003 | movie → movie" in rows, rows
        expect(page.locator("#heatmap td.cell")).to_have_count(2)
        expect(page.locator("#runs th[data-column=lr]")).to_have_count(1)
        assert sorted(page.locator("#runs td[data-column=lr]").all_inner_texts()) == ["0.0001", "0.0001", "0.0003", "0.0003"]
        expect(page.locator("#axis-select option")).to_have_count(2)  # sample and lr
    finally:
        coordinator.stop()
