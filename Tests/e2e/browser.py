"""Headless Chromium for the e2e browser tests (Debian's chromium + chromium-driver, driven by
python3-selenium): a driver factory with exact viewport sizes, waits, screenshots under
test-artifacts/browser/, and canvas pixel probes for the map renderer."""

from __future__ import annotations

import itertools
import os
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "browser"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

try:
    import selenium  # noqa: F401
except ImportError:
    # `make test` may run under a pyenv Python; Debian's python3-selenium lives in dist-packages.
    sys.path.append("/usr/lib/python3/dist-packages")

try:
    from selenium import webdriver
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException, WebDriverException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select, WebDriverWait
    MISSING = None
except ImportError as e:  # reported by the test as a skip or failure
    MISSING = f"selenium is not importable ({e}); install python3-selenium"

if MISSING is None and not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
    MISSING = "chromium / chromium-driver are not installed"

DESKTOP = (1280, 800)
PHONE = (390, 844)
DOUBLE_CLICK_S = 0.6  # Chromium counts two clicks within 500 ms at one spot as a double click

# Reads one pixel of a map layer's tile canvases at a lat/lng: [r, g, b, a] or null when no tile
# canvas covers the point. The layer is found by its data-layer attribute (the basemap has none).
PIXEL_JS = """
const [mapId, layerId, lat, lng] = arguments;
const el = document.getElementById(mapId);
const view = el && el.mapview;
if (!view) return null;
const p = view.map.latLngToContainerPoint([lat, lng]);
const box = el.getBoundingClientRect();
const x = box.left + p.x, y = box.top + p.y;
const pane = el.querySelector(`[data-layer="${layerId}"]`);
if (!pane) return null;
// Only tiles of the zoom on screen: Leaflet keeps the previous zoom's canvases (scaled) until it prunes them.
const z = Math.round(view.map.getZoom());
for (const c of pane.querySelectorAll('canvas')) {
  if (c.dataset.tile && !c.dataset.tile.startsWith(`${z}/`)) continue;
  const r = c.getBoundingClientRect();
  if (x < r.left || x >= r.right || y < r.top || y >= r.bottom) continue;
  const sx = Math.floor((x - r.left) * c.width / r.width), sy = Math.floor((y - r.top) * c.height / r.height);
  return Array.from(c.getContext('2d').getImageData(sx, sy, 1, 1).data);
}
return null;
"""

# Every tile of the map's layers has finished loading (none in flight) and at least one has data.
# Not while a zoom or pan runs: during the animated zoom to fitted layers, the old zoom's tiles are done
# and the new zoom's are not asked for yet (the layers' tile zoom is still the old one).
TILES_DONE_JS = """
const el = document.getElementById(arguments[0]);
const view = el && el.mapview;
if (!view || !view.entries.size) return false;
const map = view.map;
if (map._animatingZoom || (map._panAnim && map._panAnim._inProgress)) return false;
for (const e of view.entries.values()) {
  if (!e.vector) return false;
  if (!e.vector._map) continue;  // hidden layer
  if (e.vector._inflight.size || e.vector.isLoading()) return false;
  if (e.vector._tileZoom !== Math.round(map.getZoom())) return false;
}
return true;
"""

# Where a lat/lng is on the map now, as the offset from the map element's centre that a WebDriver
# pointer move takes.
OFFSET_JS = """
const [mapId, lat, lng] = arguments;
const el = document.getElementById(mapId), r = el.getBoundingClientRect();
const p = el.mapview.map.latLngToContainerPoint([lat, lng]);
return [p.x - r.width / 2, p.y - r.height / 2];
"""


class Browser:
    def __init__(self, base: str, size: tuple[int, int] = DESKTOP, name: str = "browser", extra_args: tuple[str, ...] = ()):
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for a in (*extra_args, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-extensions", "--no-first-run", "--password-store=basic", "--lang=en-US"):
            opts.add_argument(a)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
        self.driver.set_page_load_timeout(60)
        self.base = base.rstrip("/")
        self.name = name
        self.resize(size)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def resize(self, size: tuple[int, int]) -> None:
        """The page's viewport is exactly width×height CSS pixels (no window chrome)."""
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": size[0] < 600})
        self.size = size

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)

    def find(self, css: str, timeout: float = 20):
        return self.wait(lambda d: self._visible(css), timeout, f"element {css}")

    def _visible(self, css: str):
        for el in self.driver.find_elements(By.CSS_SELECTOR, css):
            if el.is_displayed():
                return el
        return None

    def all(self, css: str):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def wait(self, cond, timeout: float = 20, what: str = "condition"):
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.2,
                                 ignored_exceptions=(StaleElementReferenceException,)).until(lambda d: cond(d))
        except TimeoutException:
            self.shot(f"timeout-{what}"[:60].replace(" ", "_").replace("/", "_"))
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; url={self.driver.current_url}\n"
                                 f"console:\n{self.console()}")

    def js(self, script: str, *args):
        return self.driver.execute_script(script, *args)

    def shot(self, name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def shot_both_sizes(self, name: str) -> None:
        """Screenshots at 1280×800 and at 390×844 (`<name>-phone`), checking that the phone layout
        has no horizontal scroll; back to the desktop size afterwards."""
        self.shot(name)
        self.resize(PHONE)
        time.sleep(0.5)
        assert self.overflow_x() <= 1, f"{name}: the page scrolls sideways at {PHONE[0]} px"
        self.shot(f"{name}-phone")
        self.resize(DESKTOP)

    def console(self) -> str:
        try:
            return "\n".join(f"{e['level']} {e['message'][:300]}" for e in self.driver.get_log("browser"))
        except WebDriverException:
            return ""

    def pixel(self, map_id: str, layer_id: str, lat: float, lng: float):
        return self.js(PIXEL_JS, map_id, layer_id, lat, lng)

    def tiles_done(self, map_id: str, timeout: float = 30) -> None:
        time.sleep(0.3)  # let Leaflet schedule the tiles of a view change
        self.wait(lambda d: self.js(TILES_DONE_JS, map_id), timeout, f"tiles of #{map_id}")

    def pointer_until(self, map_id: str, lat: float, lng: float, cond, what: str, click: bool = False, timeout: float = 30):
        """Moves the pointer onto lat/lng of the map (and clicks there with click=True) until cond() is
        truthy; returns its value. Each try projects the point again, as a user aims at what is on screen:
        a view can still move after a check of it (the viewer fits its layers, with an animation, as soon
        as it knows their bounds), and Leaflet picks features only on a pointer event, so a tile that
        arrives after the pointer stopped shows nothing until the next move. A click is repeated only while
        cond() is false after it (a popup that opened is not clicked away), and not twice within
        DOUBLE_CLICK_S (two clicks there would be a double click, which zooms the map)."""
        tries = itertools.count()
        last_click = 0.0

        def aimed(_):
            nonlocal last_click
            if click and time.monotonic() - last_click < DOUBLE_CLICK_S:
                return cond()
            last_click = time.monotonic()
            x, y = self.js(OFFSET_JS, map_id, lat, lng)
            # One pixel either way on alternate tries: a move to where the pointer already is fires no event.
            chain = ActionChains(self.driver).move_to_element_with_offset(self.find(f"#{map_id}"), int(x) + next(tries) % 2, int(y))
            (chain.click() if click else chain).perform()
            return cond()
        return self.wait(aimed, timeout, what)

    def active(self):
        return self.driver.switch_to.active_element

    def focus_ring(self) -> str:
        """The computed outline of the focused element (the :focus-visible ring)."""
        return self.js("const s = getComputedStyle(document.activeElement); return s.outlineStyle + ' ' + s.outlineWidth;")

    def overflow_x(self) -> int:
        return self.js("return document.documentElement.scrollWidth - document.documentElement.clientWidth;")

    def quit(self) -> None:
        try:
            self.driver.quit()
        except WebDriverException:
            pass
