"""The dashboard in a real headless Chromium (Debian's chromium + chromium-driver, driven by Selenium) against a
real gcircusd: the page lists the watchers, incr raises the count without a reload, a process killed from
outside shows in the event log, and a line a child prints shows in the output view, as text."""
import os
import re
import shutil
import signal

import psutil
import pytest

from tests.conftest import child_cmd
from tests.e2e.daemon_support import READY

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/lib/chromium/chromedriver"

CONFIG = """\
httpd = true
httpd_port = 0
stats_interval = 0.5

[watcher:web]
cmd = {chatty}
stdout_stream.class = NullStream
stderr_stream.class = NullStream

[watcher:sleepers]
cmd = sleep 300
numprocesses = 2
"""


@pytest.fixture
def browser():
    # Installed by .ci/run (apt-get install chromium chromium-driver): missing, this test fails, never skips.
    if CHROMIUM is None or not os.path.exists(CHROMEDRIVER):
        pytest.fail("the browser test needs Debian's chromium and chromium-driver "
                    "(apt-get install chromium chromium-driver); found chromium=%s chromedriver=%s"
                    % (CHROMIUM, CHROMEDRIVER if os.path.exists(CHROMEDRIVER) else None))
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1400,900", "--no-first-run", "--disable-extensions"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def dashboard_url(daemon):
    daemon.wait_for("dashboard on http://")
    line = next(line for line in daemon.output if "dashboard on http://" in line)
    return re.search(r"(http://[^/\s]+/)", line).group(1)


def card(driver, name):
    from selenium.webdriver.common.by import By
    return driver.find_element(By.CSS_SELECTOR, '.watcher[data-watcher="%s"]' % name)


def text_of(driver, name, css):
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By
    try:
        return card(driver, name).find_element(By.CSS_SELECTOR, css).text
    except (NoSuchElementException, StaleElementReferenceException):
        return None


def test_dashboard_in_chromium(gcircusd, browser, tmp_path):
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    daemon = gcircusd(CONFIG.format(chatty=child_cmd("chatty")))
    daemon.wait_for(READY)
    url = dashboard_url(daemon)
    wait = WebDriverWait(browser, 20)
    browser.get(url)

    # the page lists the watchers, with their processes
    wait.until(lambda d: text_of(d, "sleepers", ".count-running") == "2" and text_of(d, "web", ".count-running") == "1")
    assert text_of(browser, "sleepers", ".badge") == "active"
    browser.execute_script("window.notReloaded = true")

    # incr raises the count shown, without a reload
    card(browser, "sleepers").find_element(By.CSS_SELECTOR, 'button[data-action="incr"]').click()
    wait.until(lambda d: text_of(d, "sleepers", ".count-configured") == "3" and
               text_of(d, "sleepers", ".count-running") == "3")
    assert browser.execute_script("return window.notReloaded") is True

    # a process killed from outside appears in the event log
    sleepers = [p for p in daemon.children() if p.name() == "sleep"]
    assert len(sleepers) == 3
    victim = sleepers[0].pid
    os.kill(victim, signal.SIGKILL)
    wait.until(lambda d: any(row.get_attribute("data-event") == "reap" and "pid %d" % victim in row.text
                             and "killed by signal 9" in row.text
                             for row in d.find_elements(By.CSS_SELECTOR, "#event-log tr")))

    # a line printed by a child appears in the output view, as text
    Select(browser.find_element(By.ID, "output-watcher")).select_by_value("web")
    wait.until(lambda d: "hello 2 <script>alert(1)</script>" in d.find_element(By.ID, "output-lines").text)
    (web_pid,) = [p.pid for p in daemon.children() if "chatty" in " ".join(_cmdline(p))]
    os.kill(web_pid, signal.SIGUSR1)
    wait.until(lambda d: "usr1 %d" % web_pid in d.find_element(By.ID, "output-lines").text)
    assert browser.find_elements(By.CSS_SELECTOR, "#output-lines script") == []
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.accept()     # no alert: the <script> lines were shown, not run
    assert not [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]

    screenshot = tmp_path / "dashboard.png"
    browser.save_screenshot(str(screenshot))
    print("dashboard screenshot: %s" % screenshot)
    assert screenshot.stat().st_size > 0


def _cmdline(process):
    try:
        return process.cmdline()
    except psutil.Error:
        return []
