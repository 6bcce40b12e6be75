"""The study page in a real browser: headless Chromium (Debian `chromium`, driven through the
system's `chromedriver` from `chromium-driver`; nothing downloads) answers every question for
two raters, one of whom stops half way and resumes; the tally must equal what was clicked.

Set STUDY_SCREENSHOT=<path.png> to also save the page's screenshot there (how
reports/figures/study-page.png is made).
"""
from __future__ import annotations

import collections
import json
import os
import random
import shutil
from pathlib import Path

import pandas as pd
import pytest

from reporting import study
from tests.conftest import NEEDS_CHROMIUM, headless_chromium
from tests.test_study import Server, make_generated, study_params


pytestmark = NEEDS_CHROMIUM


@pytest.fixture()
def browser():
    with headless_chromium(900, 640) as driver:
        yield driver


class Rater:
    """Drives the page as one rater; records (question, chosen video) for every click."""

    def __init__(self, driver, base: str, name: str, rng: random.Random):
        self.driver, self.base, self.name, self.rng = driver, base, name, rng
        self.clicks: list[tuple[str, str]] = []

    def find(self, element_id: str):
        from selenium.webdriver.common.by import By
        return self.driver.find_element(By.ID, element_id)

    def wait(self, condition, what: str):
        from selenium.webdriver.support.ui import WebDriverWait
        WebDriverWait(self.driver, 60, poll_frequency=0.05).until(lambda d: condition(), message=what)

    def start(self) -> None:
        self.driver.get(self.base + "/")
        self.find("rater").clear()
        self.find("rater").send_keys(self.name)
        self.find("start-button").click()
        self.wait(lambda: self.ready() or self.find("done").is_displayed(), "the first question")

    def ready(self) -> bool:
        section = self.find("question")
        return section.is_displayed() and section.get_attribute("data-ready") == "1"

    def progress(self) -> str:
        return self.find("progress-text").text

    def answer(self, count: int) -> None:
        for _ in range(count):
            self.wait(self.ready, f"question ready ({self.name})")
            question = self.find("question").get_attribute("data-question")
            side = self.rng.choice(["left", "right"])
            src = self.find(f"{side}-video").get_attribute("src")
            if self.rng.random() < 0.2:   # sometimes the keyboard
                from selenium.webdriver.common.action_chains import ActionChains
                from selenium.webdriver.common.keys import Keys
                ActionChains(self.driver).send_keys(Keys.ARROW_LEFT if side == "left" else Keys.ARROW_RIGHT).perform()
            else:
                self.find(f"choose-{side}").click()
            self.clicks.append((question, src.rsplit("/", 1)[1]))
            self.wait(lambda: self.find("done").is_displayed()
                      or self.find("question").get_attribute("data-question") != question,
                      f"the page to move on from {question}")


def test_two_raters_answer_everything_and_the_tally_matches(tmp_path, monkeypatch, browser):
    monkeypatch.chdir(tmp_path)
    make_generated(tmp_path, per_expression=10, size=24, frames=8)
    params = study_params(tmp_path)
    record = study.build(params)
    total = len(record["questions"])
    assert total == 54
    folder = Path(params.study.folder)

    with Server(folder) as server:
        base = f"http://127.0.0.1:{server.port}"
        ann = Rater(browser, base, "ann", random.Random(1))
        ann.start()
        assert ann.progress() == f"Question 1 of {total}"
        ann.answer(20)
        assert ann.progress() == f"Question 21 of {total}"
        # Stop, then resume from the start page with the same id.
        ann.find("stop").click()
        ann.wait(lambda: ann.find("start").is_displayed(), "the start page")
        ann.start()
        assert ann.progress() == f"Question 21 of {total}"
        ann.answer(total - 20)
        assert ann.find("done").is_displayed() and f"all {total} questions" in ann.find("done-text").text

        bob = Rater(browser, base, "bob", random.Random(2))
        bob.start()
        assert bob.progress() == f"Question 1 of {total}"
        bob.answer(3)
        screenshot = tmp_path / "study-page.png"
        bob.wait(bob.ready, "both videos loaded")
        for side in ("left", "right"):   # the GIFs really play in the page
            assert browser.execute_script(
                f"const i = document.getElementById('{side}-video'); return i.complete && i.naturalWidth;") == 24
        browser.save_screenshot(str(screenshot))
        if os.environ.get("STUDY_SCREENSHOT"):
            shutil.copyfile(screenshot, os.environ["STUDY_SCREENSHOT"])
        bob.answer(total - 3)
        assert bob.find("done").is_displayed()
        # Coming back after the end shows the end, not a question.
        bob.start()
        assert bob.find("done").is_displayed()

    videos = record["videos"]
    clicked = {("ann", q): videos[v]["method"] for q, v in ann.clicks}
    clicked.update({("bob", q): videos[v]["method"] for q, v in bob.clicks})
    assert len(clicked) == 2 * total and len(ann.clicks) == len(bob.clicks) == total

    out = tmp_path / "reports" / "study" / "answers.csv"
    study.tally(params, folder, out=out, log=False)
    answers = pd.read_csv(out)
    assert {(r.rater, r.question): r.chosen_method for r in answers.itertuples()} == clicked

    # Table 2 counts what was clicked: per competitor, answers and FRGAN's share.
    questions = {q["id"]: q for q in record["questions"]}
    expected = collections.defaultdict(lambda: [0, 0])
    for (rater, q), method in clicked.items():
        cell = expected[questions[q]["competitor"]]
        cell[0] += 1
        cell[1] += method == "frgan"
    table = study.table2_frame(out).set_index("competitor")
    for competitor, (n, k) in expected.items():
        assert table.loc[competitor, "answers"] == n == 36
        assert table.loc[competitor, "frgan_chosen"] == k
        assert table.loc[competitor, "ours_pct"] == pytest.approx(100 * k / n)
    assert json.loads((out.parent / "study.json").read_text())["study_id"] == record["study_id"]
