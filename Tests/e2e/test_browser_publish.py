"""Publishing in a real browser (issue 14): the builder shows draft/published state, the share dialog sets
a password and builds an embed snippet from its options, Publish makes the public link serve that
version, and a fresh browser (no cookies) must enter the password before the map opens.
Screenshots: test-artifacts/browser/workspace-publish.png (share dialog), workspace-publish-password.png
(the viewer's password step, and its -phone variant) and workspace-publish-viewer.png (the opened map, embed options applied)."""

from __future__ import annotations

import time
import urllib.parse


import browser as B
import helpers as h
from test_browser_journey import chrome_ok  # noqa: F401  (fixture)
from test_workspace_maps import MAPS, dataset, kepler

MAP_PASSWORD = "browser-sesame-77"


def test_publish_with_password_and_open_in_a_fresh_browser(stack, api, admin, dw, chrome_ok):  # noqa: F811
    title = h.unique("Published map")
    m = h.assert_ok(api.post(MAPS, token=admin.token, json_body={
        "title": title, "keplerMapConfig": kepler(layers=[]), "datasets": [dataset()]}), 201)
    base = f"http://127.0.0.1:{stack.http_port}"

    b = B.Browser(base, B.DESKTOP, "publish")
    try:
        b.open(f"/acc/#/login?next={urllib.parse.quote('/#/maps/' + m['id'], safe='')}")
        b.find("input[type=email]").send_keys(stack.admin_email)
        b.find("input[type=password]").send_keys(stack.admin_password, B.Keys.ENTER)
        b.find("#builder-map")
        assert "Not published yet" in b.find("#publish-state").text

        # Share: public, a password, embed options without legend and with the view locked.
        b.find("#share-button").click()
        b.find("#public-toggle").click()
        link = b.find("#public-link").get_attribute("value")
        b.find("#map-password").send_keys(MAP_PASSWORD)
        b.find("#set-password").click()
        b.wait(lambda d: "must enter the password" in b.find("#map-password-state").text, 20, "the password set")
        b.find("#embed-legend").click()
        b.find("#embed-lock").click()
        height = b.find("#embed-height")
        height.clear()
        height.send_keys("360")
        snippet = b.find("#embed-code").get_attribute("value")
        assert f"/map/{m['id']}?legend=0&amp;lock=1" in snippet or f"/map/{m['id']}?legend=0&lock=1" in snippet, snippet
        assert 'height="360"' in snippet and snippet.startswith("<iframe ")
        b.shot("workspace-publish")
        b.find("dialog.modal > .actions button").click()

        # Publish, then a draft edit: the builder says there are unpublished changes.
        b.find("#publish-button").click()
        b.wait(lambda d: b.find("#publish-state").text == "Published", 20, "published")
        t = b.find("#map-title")
        t.clear()
        t.send_keys("Draft title", B.Keys.TAB)
        b.wait(lambda d: b.find("#publish-state").text == "Unpublished changes", 20, "unpublished changes shown")
        b.shot("workspace-publish-draft")
    finally:
        b.quit()

    # A fresh browser: no cookies; the password step first, a wrong password said so, then the published map.
    v = B.Browser(base, B.DESKTOP, "publish-viewer")
    try:
        v.open(urllib.parse.urlsplit(link).path + "?legend=0&lock=1")
        v.find("#map-password-form")
        assert v.driver.get_cookies() == []
        v.find("#map-password-input").send_keys("not-the-password", B.Keys.ENTER)
        v.wait(lambda d: "Wrong password" in v.find("#map-password-error").text, 20, "the wrong-password message")
        v.shot_both_sizes("workspace-publish-password")  # the phone layout does not scroll sideways
        field = v.find("#map-password-input")
        field.clear()
        field.send_keys(MAP_PASSWORD, B.Keys.ENTER)
        assert v.find("#public-title").text == title, "the published version, not the draft"
        assert v.driver.get_cookies() == [], "the grant lives in the tab, not in a cookie"
        assert v.js("return document.body.classList.contains('embed-no-legend') && document.body.classList.contains('embed-locked')")
        assert v.js("return document.getElementById('public-map').mapview.map.dragging.enabled()") is False
        time.sleep(1)  # let the basemap tiles finish for the screenshot (nothing is asserted on time)
        v.shot("workspace-publish-viewer")
        # A reload in the same tab keeps the grant: no second password prompt.
        v.driver.refresh()
        assert v.find("#public-title").text == title
    finally:
        v.quit()
