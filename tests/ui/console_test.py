#!/usr/bin/env python3
"""The web console in headless Chromium against a real three-node cluster.

Run by tests/ui/console.sh, which starts the cluster and passes in the environment:
HPORT_1..3 (the nodes' HTTP ports), L (the leader's id), UI_TOKEN (the admin's bearer
token, for setting things up and writing "elsewhere" through the API), UI_PASSWORD (every
user's password), UI_SHOTS (where screenshots go), UI_PIDS (a file this test appends its
chromedriver pids to, so that the shell can sweep them), UI_DOWNLOADS (the browser's download
directory), UI_CHROMEDRIVER.

Every wait is bounded (WebDriverWait at most 10 s, HTTP calls 10 s); every browser is quit in
a finally.
"""
import json
import os
import sys
import time
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import (NoAlertPresentException, NoSuchElementException,
                                        StaleElementReferenceException, TimeoutException)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

PORTS = {i: int(os.environ["HPORT_%d" % i]) for i in (1, 2, 3)}
LEADER = int(os.environ["L"])
FOLLOWER = LEADER % 3 + 1
TOKEN = os.environ["UI_TOKEN"]
PW = os.environ["UI_PASSWORD"]
SHOTS = os.environ["UI_SHOTS"]
PIDS = os.environ["UI_PIDS"]
DOWNLOADS = os.environ["UI_DOWNLOADS"]
CHROMEDRIVER = os.environ.get("UI_CHROMEDRIVER", "/usr/bin/chromedriver")
WAIT = 10  # seconds: the bound of every explicit wait
PROJECT = "demo"
XSS_SCRIPT = "<script>alert(1)</script>"
XSS_IMG = '"><img src=x onerror=alert(1)>'

DRIVERS = []
LOGS = {}


def base(node):
    return "http://127.0.0.1:%d" % PORTS[node]


def log(msg):
    print("console_test: %s" % msg, flush=True)


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


# --- the API, for setting up and for writing "elsewhere" -------------------------------------

def api(method, path, body=None, node=None, token=TOKEN):
    """(status, parsed JSON or None) of one call; 10 s at most."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base(node or LEADER) + path, data=data, method=method)
    req.add_header("Authorization", "Bearer " + token)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            raw = res.read()
            return res.status, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as err:
        raw = err.read()
        try:
            return err.code, json.loads(raw)
        except ValueError:
            return err.code, raw.decode(errors="replace")


def api_ok(method, path, body=None, want=(200, 201, 204), node=None):
    status, ans = api(method, path, body, node)
    check(status in want, "%s %s: expected %s, got %s %s" % (method, path, want, status, ans))
    return ans


# --- the browser ------------------------------------------------------------------------------

def new_driver():
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,900", "--no-first-run", "--disable-extensions",
                "--password-store=basic"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    DRIVERS.append(d)
    with open(PIDS, "a") as f:
        f.write("%d\n" % d.service.process.pid)
    d.implicitly_wait(0.5)
    d.set_script_timeout(WAIT)
    d.set_page_load_timeout(WAIT)
    return d


def wait(d, cond, what, timeout=WAIT):
    try:
        return WebDriverWait(d, timeout, poll_frequency=0.1,
                             ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)
                             ).until(cond)
    except TimeoutException:
        shot(d, "failed-" + what.replace(" ", "-")[:40])
        raise Failure("timed out after %d s waiting for %s; alert region: %r" % (timeout, what, alert_text(d)))


def visible(d, css, what=None):
    return wait(d, EC.visibility_of_element_located((By.CSS_SELECTOR, css)), what or css)


def gone(d, css, what=None):
    return wait(d, EC.invisibility_of_element_located((By.CSS_SELECTOR, css)), what or ("no " + css))


def text_is(d, css, want, what=None):
    return wait(d, lambda d: d.find_element(By.CSS_SELECTOR, css).text.strip() == want,
                what or ("%s to read %r" % (css, want)))


def absent(d, css):
    """No element matches css now (no implicit wait: the page is already drawn)."""
    d.implicitly_wait(0)
    try:
        return not d.find_elements(By.CSS_SELECTOR, css)
    finally:
        d.implicitly_wait(0.5)


def alert_text(d):
    try:
        el = d.find_element(By.ID, "alert")
        return el.text if el.is_displayed() else ""
    except Exception:  # noqa: BLE001 - diagnostics only
        return "?"


UNLABELLED_JS = """
    const shown = (e) => e.offsetParent !== null || e.closest('dialog[open]');
    return [...document.querySelectorAll('input, select, textarea, button')].filter(shown).filter((e) => {
      if (e.getAttribute('aria-label')) return false;
      if (e.tagName === 'BUTTON') return e.textContent.trim() === '';
      return !(e.labels && e.labels.length);
    }).map((e) => e.tagName + '#' + e.id);
"""


# Text nodes that read "null", "undefined" or "[object Object]": a value that was not an
# element or a string reached the page (DOM append() writes null as the word).
STRAY_TEXT_JS = """
    const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    const bad = [];
    for (let n = walk.nextNode(); n; n = walk.nextNode()) {
      const t = n.nodeValue.trim();
      if (t === 'null' || t === 'undefined' || t === '[object Object]') bad.push(t + ' in <' + n.parentNode.nodeName.toLowerCase() + '>');
    }
    return bad;
"""


def shot(d, name):
    """Saves the page as NAME.png; every visible control on it must have a label, and no text
    node may read null or undefined."""
    path = os.path.join(SHOTS, name + ".png")
    d.save_screenshot(path)
    if not name.startswith("failed-"):
        bad = d.execute_script(UNLABELLED_JS)
        check(not bad, "controls without a label on the %s page: %s" % (name, bad))
        stray = d.execute_script(STRAY_TEXT_JS)
        check(not stray, "stray text on the %s page: %s" % (name, stray))


def go(d, node, route):
    """Loads the console on node at a hash route (a full page load)."""
    d.get(base(node) + "/ui/#" + route)


def route(d, r):
    """Moves to another hash route without reloading the page."""
    d.execute_script("location.hash = arguments[0]", r)


def set_text(d, el, text):
    """Sets a textarea's text as a paste would: value, then an input event."""
    d.execute_script("arguments[0].value = arguments[1];"
                     "arguments[0].dispatchEvent(new Event('input', {bubbles: true}));", el, text)


def selected_text(d, el):
    return d.execute_script("const t = arguments[0]; return t.value.slice(t.selectionStart, t.selectionEnd);", el)


def login(d, node, email, name_for_shot=None):
    go(d, node, "/login")
    visible(d, "#login-email", "the login form")
    if name_for_shot:
        shot(d, name_for_shot)
    for field, value in (("login-email", email), ("login-password", PW)):
        el = d.find_element(By.ID, field)
        el.clear()
        el.send_keys(value)
    d.find_element(By.ID, "login-submit").click()
    visible(d, "#project-list table", "the project list after logging in as " + email)


def fetch(d, method, path, body=None, csrf=False):
    """A fetch from the page; with csrf=False no X-CSRF-Token header. → {status, body}."""
    return d.execute_async_script("""
        const [method, path, body, done] = arguments;
        const init = {method, headers: {'Content-Type': 'application/json'}};
        if (body !== null) init.body = JSON.stringify(body);
        fetch(path, init).then(async (r) => done({status: r.status, body: await r.text()}))
          .catch((e) => done({status: -1, body: String(e)}));
    """, method, path, body)


def no_alert(d):
    try:
        a = d.switch_to.alert
        txt = a.text
        a.dismiss()
        raise Failure("a JavaScript alert fired: %r" % txt)
    except NoAlertPresentException:
        pass


def console_problems(d):
    """CSP violations and uncaught exceptions in the browser's console."""
    bad = []
    LOGS[id(d)] = d.get_log("browser")
    for e in LOGS[id(d)]:
        m = e.get("message", "")
        if "Content Security Policy" in m or "Uncaught" in m or "SyntaxError" in m:
            bad.append(m)
    return bad


def config_version(d):
    return d.find_element(By.ID, "config-version").text.strip()


# --- the checks -------------------------------------------------------------------------------

def setup_data():
    """A schema, a config bound to it, and the XSS project and config, through the API."""
    schema = api_ok("POST", "/v1/schemas", {"name": "db port", "schema_content": {
        "type": "object", "required": ["port"],
        "properties": {"port": {"type": "integer", "minimum": 1}, "host": {"type": "string"}}}})
    api_ok("POST", "/v1/projects/%s/configs" % PROJECT,
           {"key": "svc.db", "content": {"host": "db", "port": 5432}, "schema_id": schema["id"]})
    api_ok("POST", "/v1/projects", {"id": "xss", "name": XSS_SCRIPT + XSS_IMG})
    api_ok("POST", "/v1/projects/xss/configs",
           {"key": "x.y:z-1", "content": {"a": XSS_SCRIPT, "b": XSS_IMG, XSS_IMG: [XSS_SCRIPT]}})
    api_ok("POST", "/v1/schemas", {"name": XSS_IMG, "schema_content": True})
    return schema


def check_login_and_projects(a):
    go(a, LEADER, "/projects")
    visible(a, "#login-email", "the login form for a browser without a session")
    check(a.find_element(By.ID, "nav").is_displayed() is False, "the navigation shows before login")
    shot(a, "login")
    a.find_element(By.ID, "login-email").send_keys("admin@example.com")
    a.find_element(By.ID, "login-password").send_keys("wrong-password-0")
    a.find_element(By.ID, "login-submit").click()
    wait(a, lambda d: "Wrong email or password" in alert_text(d), "the wrong-password message")
    login(a, LEADER, "admin@example.com")
    row = visible(a, '[data-test="project-row"][data-project="demo"]', "the demo project's row")
    check(row.find_element(By.CSS_SELECTOR, '[data-test="role"]').text == "admin", "admin's role in demo")
    check(a.find_element(By.ID, "nav-cluster").is_displayed(), "an instance admin should see Cluster")
    shot(a, "projects")


def check_csrf(a):
    r = fetch(a, "POST", "/v1/projects/demo/configs", {"key": "csrf.probe", "content": 1})
    check(r["status"] == 403, "a POST without X-CSRF-Token: expected 403, got %s" % r)
    check(json.loads(r["body"]).get("error") in ("csrf", {"code": "csrf"}) or "csrf" in r["body"],
          "the 403 should be the csrf error: %s" % r["body"])
    status, _ = api("GET", "/v1/projects/demo/configs/csrf.probe")
    check(status == 404, "the refused POST wrote csrf.probe (GET answered %s)" % status)


def check_create_and_edit(a):
    route(a, "/p/demo/new")
    key = visible(a, "#new-config-key", "the new config form")
    key.send_keys("app.main")
    set_text(a, a.find_element(By.ID, "new-config-editor"), '{\n  "name": "main",\n  "replicas": 1\n}')
    a.find_element(By.ID, "new-config-submit").click()
    text_is(a, "#config-version", "1", "app.main version 1 after creating it")
    ta = visible(a, "#config-editor")
    check(json.loads(ta.get_attribute("value")) == {"name": "main", "replicas": 1}, "app.main's content in the editor")
    shot(a, "config")
    # A syntax error typed in: flagged with line and column, Save disabled, nothing sent.
    set_text(a, ta, '{\n  "name": "main",\n  "replicas": 2\n')
    ta.send_keys(",")
    err = visible(a, '[data-test="syntax-error"]', "the syntax error")
    check("line 4" in err.text and "column" in err.text, "the syntax error names line and column: %r" % err.text)
    check(not a.find_element(By.ID, "config-save").is_enabled(), "Save is enabled while the JSON is invalid")
    shot(a, "editor-error")
    set_text(a, ta, '{\n  "name": "main",\n  "replicas": 2\n}')
    gone(a, '[data-test="syntax-error"]', "the syntax error to go")
    a.find_element(By.ID, "config-save").click()
    text_is(a, "#config-version", "2", "app.main version 2 after Save")
    check(api_ok("GET", "/v1/projects/demo/configs/app.main")["content"] == {"name": "main", "replicas": 2},
          "app.main v2 in the API")
    route(a, "/p/demo")
    visible(a, '[data-test="config-row"][data-key="app.main"]', "app.main in the list")
    # Prefix search.
    a.find_element(By.ID, "config-prefix").send_keys("svc.")
    a.find_element(By.ID, "config-search").click()
    wait(a, lambda d: [e.get_attribute("data-key") for e in d.find_elements(By.CSS_SELECTOR, '[data-test="config-row"]')]
         == ["svc.db"], "the prefix search to list only svc.db")
    a.find_element(By.ID, "config-prefix").clear()
    a.find_element(By.ID, "config-search").click()
    visible(a, '[data-test="config-row"][data-key="app.main"]', "app.main back in the list")
    # A config written elsewhere appears in the open list (the project watch).
    wait(a, lambda d: "live" in d.find_element(By.CSS_SELECTOR, '[data-test="live-state"]').text, "the list's watch")
    api_ok("POST", "/v1/projects/demo/configs", {"key": "app.live", "content": {"on": True}}, node=FOLLOWER)
    visible(a, '[data-test="config-row"][data-key="app.live"]', "app.live appearing in the open list")
    shot(a, "configs")


def check_schema_violation(a):
    route(a, "/p/demo/c/svc.db")
    ta = visible(a, "#config-editor", "svc.db's editor")
    set_text(a, ta, '{\n  "host": "db",\n  "port": "5432"\n}')
    a.find_element(By.ID, "config-save").click()
    v = visible(a, '[data-test="violation"][data-pointer="/port"]', "the violation at /port")
    check("schema" in alert_text(a), "the alert names the schema: %r" % alert_text(a))
    a.find_element(By.CSS_SELECTOR, '[data-test="violation"][data-pointer="/port"]').click()
    got = selected_text(a, a.find_element(By.ID, "config-editor"))
    check(got == '"5432"', "clicking /port should select its value, selected %r" % got)
    check(config_version(a) == "1", "svc.db was written despite the 422")
    shot(a, "schema-violation")
    del v


def check_conflict_and_live(a, b):
    """b (editor, on a follower) edits app.main while a (admin, leader) saves a new version:
    b sees the notice, then its Save is a conflict resolved by applying on top."""
    route(a, "/p/demo/c/app.main")
    text_is(a, "#config-version", "2")
    go(b, FOLLOWER, "/p/demo/c/app.main")
    text_is(b, "#config-version", "2", "app.main v2 on the follower")
    wait(b, lambda d: "live" in d.find_element(By.CSS_SELECTOR, '[data-test="live-state"]').text, "b's watch to run")
    tb = b.find_element(By.ID, "config-editor")
    set_text(b, tb, '{\n  "name": "main",\n  "replicas": 5,\n  "by": "editor"\n}')
    ta = a.find_element(By.ID, "config-editor")
    set_text(a, ta, '{\n  "name": "main",\n  "replicas": 3\n}')
    a.find_element(By.ID, "config-save").click()
    text_is(a, "#config-version", "3", "a's save of version 3")
    # b is editing: a notice, not a reload of its text.
    note = visible(b, '[data-test="live-notice-text"]', "b's notice of version 3")
    check("3" in note.text and "elsewhere" in note.text, "the notice says version 3: %r" % note.text)
    check('"editor"' in b.find_element(By.ID, "config-editor").get_attribute("value"), "b's edit was clobbered")
    b.find_element(By.ID, "config-save").click()
    box = visible(b, '[data-test="conflict"]', "the conflict panel")
    check("version 3" in box.text, "the conflict panel names version 3: %r" % box.text[:300])
    visible(b, '[data-test="conflict"] [data-test="diff"] tr.add', "an added line in the conflict diff")
    shot(b, "conflict")
    b.find_element(By.ID, "conflict-apply").click()
    text_is(b, "#config-version", "4", "version 4 after applying b's edit on top of 3")
    gone(b, '[data-test="conflict"]')
    check(api_ok("GET", "/v1/projects/demo/configs/app.main")["content"] == {"name": "main", "replicas": 5, "by": "editor"},
          "app.main v4 holds b's content")
    # a is not editing: version 4 appears by itself; then a write through the API, too.
    text_is(a, "#config-version", "4", "a's view following version 4 (live)")
    a.execute_script("window.__noReload = 42")
    api_ok("PUT", "/v1/projects/demo/configs/app.main",
           {"content": {"name": "main", "replicas": 6, "by": "api"}, "expected_version": 4}, node=FOLLOWER)
    text_is(a, "#config-version", "5", "a's view showing version 5 written through the API")
    check(a.execute_script("return window.__noReload") == 42, "the page reloaded for the live update")
    check('"api"' in a.find_element(By.ID, "config-editor").get_attribute("value"), "a's editor shows version 5's content")


def check_conflict_discard(b):
    """A conflict resolved the other way: "Discard mine" drops b's edit, shows the version
    written elsewhere and writes nothing."""
    api_ok("POST", "/v1/projects/demo/configs", {"key": "app.discard", "content": {"v": 1}})
    go(b, FOLLOWER, "/p/demo/c/app.discard")
    text_is(b, "#config-version", "1", "app.discard v1 on the follower")
    set_text(b, b.find_element(By.ID, "config-editor"), '{\n  "v": "mine"\n}')
    api_ok("PUT", "/v1/projects/demo/configs/app.discard", {"content": {"v": 2}, "expected_version": 1})
    b.find_element(By.ID, "config-save").click()
    visible(b, '[data-test="conflict"]', "the conflict panel for app.discard")
    b.find_element(By.ID, "conflict-discard").click()
    gone(b, '[data-test="conflict"]')
    # The page reloads the config itself (the watch may bring version 2 as well, later).
    wait(b, lambda d: "discarded; showing version 2" in d.find_element(By.ID, "status").text,
         "the discard's confirmation naming version 2")
    text_is(b, "#config-version", "2", "version 2 shown after discarding")
    wait(b, lambda d: json.loads(d.find_element(By.ID, "config-editor").get_attribute("value")) == {"v": 2},
         "the editor holding version 2's content")
    ans = api_ok("GET", "/v1/projects/demo/configs/app.discard")
    check([ans["version"], ans["content"]] == [2, {"v": 2}], "app.discard after the discard: %s" % ans)


def check_history(a):
    route(a, "/p/demo/c/app.main/history")
    visible(a, '[data-test="history-row"][data-version="5"]', "version 5 in the history")
    check(len(a.find_elements(By.CSS_SELECTOR, '[data-test="history-row"]')) == 5, "five versions in the history")
    Select(a.find_element(By.ID, "history-from")).select_by_value("1")
    Select(a.find_element(By.ID, "history-to")).select_by_value("5")
    a.find_element(By.ID, "history-compare").click()
    wait(a, lambda d: "version 1" in d.find_element(By.CSS_SELECTOR, "#history-diff caption").text,
         "the diff of versions 1 and 5")
    check(len(a.find_elements(By.CSS_SELECTOR, "#history-diff tr.add")) >= 1, "the 1→5 diff has added lines")
    shot(a, "history")
    row = a.find_element(By.CSS_SELECTOR, '[data-test="history-row"][data-version="1"]')
    row.find_element(By.CSS_SELECTOR, '[data-test="rollback"]').click()
    dlg = visible(a, 'dialog[data-test="confirm"]', "the rollback confirmation")
    check("version 1" in dlg.text and "current (version 5)" in dlg.text, "the confirmation names both versions")
    check(len(dlg.find_elements(By.CSS_SELECTOR, "tr.del")) >= 1, "the confirmation's diff shows removed lines")
    shot(a, "rollback")
    dlg.find_element(By.CSS_SELECTOR, '[data-test="confirm-ok"]').click()
    visible(a, '[data-test="history-row"][data-version="6"]', "version 6 (the rollback) in the history")
    cur = api_ok("GET", "/v1/projects/demo/configs/app.main")
    check(cur["version"] == 6 and cur["content"] == {"name": "main", "replicas": 1}, "v6 holds v1's content: %s" % cur)


def check_schemas(a, schema):
    route(a, "/schemas")
    visible(a, '[data-test="schema-row"][data-schema-id="%s"]' % schema["id"], "the schema in the catalog")
    shot(a, "schemas")
    # An existing schema edited in place (PUT): the API then answers its new name.
    route(a, "/schemas/%s" % schema["id"])
    name = visible(a, "#schema-form-name", "the schema's form")
    name.clear()
    name.send_keys("port rules, edited")
    check(not a.find_element(By.ID, "schema-form-format-assertion").is_selected(),
          "format assertion starts unticked, as the schema was created")
    a.find_element(By.ID, "schema-form-format-assertion").click()
    a.find_element(By.ID, "schema-form-save").click()
    wait(a, lambda d: [api("GET", "/v1/schemas/%s" % schema["id"])[1].get(k) for k in ("name", "format_assertion")]
         == ["port rules, edited", True], "the schema's new name and format assertion in the API")
    # Reloaded, the form shows the stored option.
    route(a, "/schemas")
    route(a, "/schemas/%s" % schema["id"])
    wait(a, lambda d: d.find_element(By.ID, "schema-form-format-assertion").is_selected(),
         "format assertion ticked after a reload")
    a.execute_script("arguments[0].scrollIntoView({block: 'center'})",
                     a.find_element(By.ID, "schema-form-format-assertion"))
    shot(a, "schema")
    route(a, "/schemas/new")
    name = visible(a, "#schema-form-name", "the new schema form")
    name.send_keys("broken")
    set_text(a, a.find_element(By.ID, "schema-form-content"), '{\n  "type": "object",\n  "properties": {\n    "a": {"minimum": "x"}\n  }\n}')
    a.find_element(By.ID, "schema-form-save").click()
    visible(a, '[data-test="violation"][data-pointer="/properties/a/minimum"]', "the compile error at its pointer")
    got = selected_text(a, a.find_element(By.ID, "schema-form-content"))
    check(got == '"x"', "the compile error selects the value at its pointer, got %r" % got)
    # Strict: a keyword the draft does not know is refused at its pointer; unticked, ignored.
    set_text(a, a.find_element(By.ID, "schema-form-content"), '{\n  "type": "object",\n  "properties": {\n    "a": {"x-unit": "ms"}\n  }\n}')
    a.find_element(By.ID, "schema-form-strict").click()
    a.find_element(By.ID, "schema-form-save").click()
    visible(a, '[data-test="violation"][data-pointer="/properties/a/x-unit"]', "the strict refusal at its pointer")
    a.find_element(By.ID, "schema-form-strict").click()
    a.find_element(By.ID, "schema-form-save").click()
    wait(a, lambda d: any(s["name"] == "broken" for s in api("GET", "/v1/schemas?limit=100")[1]["items"]),
         "the schema with an unknown keyword created without strict")


def check_audit(a):
    route(a, "/p/demo/audit")
    visible(a, "#audit-verify").click()
    visible(a, '[data-test="audit-clean"]', "the audit verdict: clean")
    counts = a.find_element(By.CSS_SELECTOR, '[data-test="audit-counts"]').text
    check("revisions" in counts and "keys" in counts, "the verdict gives counts: %r" % counts)
    shot(a, "audit")
    # The export: every revision of the project, one JSON object a line, downloaded.
    os.makedirs(DOWNLOADS, exist_ok=True)
    a.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": DOWNLOADS})
    a.find_element(By.ID, "audit-export").click()
    path = os.path.join(DOWNLOADS, "conclave-demo-revisions.jsonl")
    wait(a, lambda d: os.path.exists(path) and not os.path.exists(path + ".crdownload"), "the downloaded export")
    with open(path) as f:
        revs = [json.loads(line) for line in f]
    want = api_ok("GET", "/v1/projects/demo/revisions?limit=1000")["items"]
    check([r["revision"] for r in revs] == [r["revision"] for r in want],
          "the export's revisions %s, the API's %s" % ([r["revision"] for r in revs], [r["revision"] for r in want]))


def check_transfer(a):
    """Last (it moves the leader): a leadership transfer from the console, confirmed."""
    route(a, "/cluster")
    visible(a, "#cluster-transfer")
    Select(a.find_element(By.ID, "transfer-target")).select_by_value(str(FOLLOWER))
    a.find_element(By.ID, "cluster-transfer").click()
    dlg = visible(a, 'dialog[data-test="confirm"]', "the transfer confirmation")
    check("node %d" % FOLLOWER in dlg.text, "the confirmation names node %d: %r" % (FOLLOWER, dlg.text))
    dlg.find_element(By.CSS_SELECTOR, '[data-test="confirm-ok"]').click()
    wait(a, lambda d: "transferred" in d.find_element(By.ID, "status").text, "the transfer's confirmation")
    # The page reloads the cluster after the transfer; Refresh until this node names the new
    # leader (at most 10 tries, half a second apart).
    for _ in range(10):
        if ("node %d" % FOLLOWER) in a.find_element(By.ID, "cluster-leader").text:
            break
        time.sleep(0.5)
        a.find_element(By.ID, "cluster-refresh").click()
    leader = a.find_element(By.ID, "cluster-leader").text
    check(("node %d" % FOLLOWER) in leader, "after the transfer the leader should be node %d: %r" % (FOLLOWER, leader))


def check_cluster(a):
    route(a, "/cluster")
    wait(a, lambda d: len(d.find_elements(By.CSS_SELECTOR, '[data-test="cluster-member"]')) == 3, "three members")
    leader = a.find_element(By.ID, "cluster-leader").text
    check(("node %d" % LEADER) in leader, "the cluster page names node %d as leader: %r" % (LEADER, leader))
    check(len(a.find_elements(By.CSS_SELECTOR, '[data-test="is-leader"]')) == 1, "one member marked leader")
    # Every member's own /health, asked by the node serving the page: all three answer, and
    # exactly one of them says it leads.
    health = [e.text for e in a.find_elements(By.CSS_SELECTOR, '[data-test="member-health"]')]
    check(len(health) == 3 and all(", term " in t for t in health),
          "each member's health should be shown: %r" % health)
    check(sum(1 for t in health if t.startswith("leader")) == 1, "one member reports leader: %r" % health)
    shot(a, "cluster")


def check_xss(a):
    route(a, "/projects")
    visible(a, '[data-test="project-row"][data-project="xss"]', "the xss project")
    check(XSS_SCRIPT + XSS_IMG in a.find_element(By.ID, "project-list").text, "the xss project's name is shown as text")
    route(a, "/p/xss/c/x.y:z-1")
    ta = visible(a, "#config-editor", "the xss config")
    val = ta.get_attribute("value")
    check(XSS_SCRIPT in val and json.dumps(XSS_IMG)[1:-1] in val, "the xss content is in the editor as text")
    name = a.find_element(By.CSS_SELECTOR, '[data-test="project-name"]').text
    check(name == XSS_SCRIPT + XSS_IMG, "the project name is shown as text: %r" % name)
    route(a, "/p/xss/c/x.y:z-1/history")
    visible(a, '[data-test="history-row"]', "the xss history")
    route(a, "/schemas")
    wait(a, lambda d: XSS_IMG in d.find_element(By.ID, "schema-list").text, "the xss schema's name as text")
    route(a, "/p/xss/c/x.y:z-1")
    visible(a, "#config-editor")
    shot(a, "xss")
    imgs = a.execute_script("return document.querySelectorAll('img').length")
    scripts = a.execute_script("return Array.from(document.scripts).map((s) => s.src)")
    check(imgs == 0, "an <img> element was created from user data (%d)" % imgs)
    check(len(scripts) == 1 and scripts[0].endswith("/ui/app.js"), "unexpected script elements: %s" % scripts)
    no_alert(a)


def check_viewer(c):
    login(c, LEADER, "viewer@example.com")
    row = visible(c, '[data-test="project-row"][data-project="demo"]')
    check(row.find_element(By.CSS_SELECTOR, '[data-test="role"]').text == "viewer", "viewer's role in demo")
    check(not c.find_element(By.ID, "nav-cluster").is_displayed(), "a non-admin sees the Cluster entry")
    check(absent(c, '[data-project="demo"] [data-test="project-delete"]'), "a viewer sees Delete project")
    route(c, "/p/demo")
    visible(c, '[data-test="config-row"][data-key="app.main"]')
    check(absent(c, "#new-config"), "a viewer sees New config")
    check(absent(c, '[data-test="tab-members"]'), "a viewer sees the Members tab")
    route(c, "/p/demo/c/app.main")
    content = visible(c, "#config-content", "the read-only content")
    check(json.loads(content.text) == {"name": "main", "replicas": 1}, "the viewer sees app.main's content")
    for sel in ("#config-save", "#config-delete", "#config-editor", "textarea"):
        check(absent(c, sel), "a viewer sees %s" % sel)
    shot(c, "viewer")
    route(c, "/p/demo/c/app.main/history")
    visible(c, '[data-test="history-row"][data-version="6"]')
    check(absent(c, '[data-test="rollback"]'), "a viewer sees Roll back")
    # The API refuses a viewer's write even when forced from the page.
    token = c.execute_async_script("""
        const done = arguments[0];
        fetch('/v1/users/me').then((r) => r.json()).then((m) => done(m.csrf_token)).catch((e) => done(''));""")
    r = c.execute_async_script("""
        const [csrf, done] = arguments;
        fetch('/v1/projects/demo/configs', {method: 'POST', headers: {'Content-Type': 'application/json',
          'X-CSRF-Token': csrf}, body: JSON.stringify({key: 'viewer.write', content: 1})})
          .then((r) => done(r.status)).catch((e) => done(-1));""", token)
    check(r == 403, "a viewer's forced write: expected 403, got %s" % r)


def check_members_keys_users(a):
    """The admin pages draw from the real API: members (role changed, member removed), a new
    API key shown once and then revoked, a project made and deleted, users."""
    route(a, "/p/demo/members")
    visible(a, '[data-test="member-row"][data-email="viewer@example.com"]', "the viewer among the members")
    check(Select(a.find_element(By.CSS_SELECTOR, '[data-email="editor@example.com"] select')).first_selected_option
          .get_attribute("value") == "editor", "the editor's role in the members list")
    route(a, "/p/demo/keys")
    visible(a, "#key-form")
    Select(a.find_element(By.ID, "key-scope")).select_by_value("read")
    a.find_element(By.ID, "key-prefix").send_keys("app.")
    a.find_element(By.ID, "key-name").send_keys("reader")
    a.find_element(By.ID, "key-submit").click()
    key = visible(a, '[data-test="new-key"]', "the new key, shown once").text
    check(key.startswith("ck_"), "the new key: %r" % key)
    status, _ = api("GET", "/v1/projects/demo/configs/app.main", token=key)
    check(status == 200, "the new read key reads app.main: %s" % status)
    status, _ = api("GET", "/v1/projects/demo/configs/svc.db", token=key)
    check(status == 403, "the new key is limited to app.: svc.db answered %s" % status)
    shot(a, "keys")
    # Revoked from the console (after its confirmation), the key stops working.
    prefix = key.split("_")[1]
    rows = [r for r in a.find_elements(By.CSS_SELECTOR, '[data-test="key-row"]') if prefix in r.text]
    check(len(rows) == 1, "one row for the new key (prefix %s), found %d" % (prefix, len(rows)))
    rows[0].find_element(By.CSS_SELECTOR, '[data-test="key-revoke"]').click()
    visible(a, 'dialog[data-test="confirm"]', "the revoke confirmation").find_element(
        By.CSS_SELECTOR, '[data-test="confirm-ok"]').click()
    status = None
    for _ in range(50):  # the key dies on every node within a second (docs/api.md); 10 s at most
        status, _ = api("GET", "/v1/projects/demo/configs/app.main", token=key)
        if status == 401:
            break
        time.sleep(0.2)
    check(status == 401, "the revoked key still answers %s" % status)
    # A role changed, then the member removed, from the members page.
    route(a, "/p/demo/members")
    Select(visible(a, '[data-email="editor@example.com"] select')).select_by_value("viewer")
    roles = None
    for _ in range(50):
        roles = {r["email"]: r["role_level"] for r in api_ok("GET", "/v1/projects/demo/roles")["items"]}
        if roles.get("editor@example.com") == "viewer":
            break
        time.sleep(0.2)
    check(roles.get("editor@example.com") == "viewer", "the editor's role after the change: %r" % roles)
    visible(a, '[data-email="editor@example.com"] [data-test="member-remove"]').click()
    visible(a, 'dialog[data-test="confirm"]', "the remove confirmation").find_element(
        By.CSS_SELECTOR, '[data-test="confirm-ok"]').click()
    gone(a, '[data-test="member-row"][data-email="editor@example.com"]', "the removed member's row to go")
    emails = [r["email"] for r in api_ok("GET", "/v1/projects/demo/roles")["items"]]
    check("editor@example.com" not in emails, "the removed editor is still a member: %r" % emails)
    # A project made and deleted (with its confirmation) from the console.
    route(a, "/projects")
    visible(a, "#new-project-id").send_keys("made-here")
    a.find_element(By.ID, "new-project-name").send_keys("Made in the console")
    a.find_element(By.ID, "new-project-submit").click()
    check(visible(a, '#new-project [data-test="new-key"]', "the project's first key").text.startswith("ck_"), "first key")
    row = visible(a, '[data-test="project-row"][data-project="made-here"]', "the new project's row")
    row.find_element(By.CSS_SELECTOR, '[data-test="project-delete"]').click()
    dlg = visible(a, 'dialog[data-test="confirm"]', "the delete confirmation")
    dlg.find_element(By.CSS_SELECTOR, '[data-test="confirm-ok"]').click()
    gone(a, '[data-test="project-row"][data-project="made-here"]', "the deleted project's row to go")
    status, _ = api("GET", "/v1/projects/made-here")
    check(status == 404, "the deleted project answers %s" % status)
    route(a, "/users")
    wait(a, lambda d: len(d.find_elements(By.CSS_SELECTOR, '[data-test="user-row"]')) == 3, "three users")


def check_delete_config(a):
    """A config deleted from its page, after the confirmation: the API then has no live one."""
    route(a, "/p/demo/c/app.live")
    visible(a, "#config-delete").click()
    visible(a, 'dialog[data-test="confirm"]', "the delete confirmation").find_element(
        By.CSS_SELECTOR, '[data-test="confirm-ok"]').click()
    wait(a, lambda d: api("GET", "/v1/projects/demo/configs/app.live")[0] == 404, "app.live deleted")


def check_phone(a):
    a.set_window_size(390, 844)
    route(a, "/p/demo")
    visible(a, '[data-test="config-row"][data-key="app.main"]')
    toggle = visible(a, "#nav-toggle", "the menu button at phone width")
    check(not a.find_element(By.CSS_SELECTOR, '[data-test="nav-projects"]').is_displayed(), "the nav is not collapsed")
    width = a.execute_script("return document.documentElement.scrollWidth")
    check(width <= 400, "the page is %d px wide at a 390 px viewport" % width)
    toggle.click()
    visible(a, '[data-test="nav-projects"]', "the nav after opening the menu")
    shot(a, "phone")
    toggle.click()
    # The other wide pages fit too: tables and diffs scroll inside their own boxes.
    for r, css in (("/p/demo/c/app.main", "#config-editor"), ("/p/demo/c/app.main/history", "#history-diff table"),
                   ("/cluster", '[data-test="cluster-member"]')):
        route(a, r)
        visible(a, css)
        width = a.execute_script("return document.documentElement.scrollWidth")
        check(width <= 400, "%s is %d px wide at a 390 px viewport" % (r, width))
    a.set_window_size(1280, 900)


def check_logout(a):
    visible(a, "#logout").click()
    visible(a, "#login-email", "the login form after logging out")
    r = fetch(a, "GET", "/v1/users/me")
    check(r["status"] == 401, "/v1/users/me after logout: expected 401, got %s" % r)


def check_login_throttled(a):
    """After failed logins an account is locked (docs/security.md): the login page shows the
    server's 429 message with its wait, not "wrong password"."""
    email = "guesser-target@example.com"
    retry = 0
    # Failures through the API until the lock is at least 3 s long (1, 2, 4 s ... after the
    # 5 free ones), so that the browser's attempt below falls inside it. 12 tries at most.
    for _ in range(12):
        req = urllib.request.Request(base(FOLLOWER) + "/v1/auth/login", method="POST",
                                     data=json.dumps({"email": email, "password": "not-the-password"}).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as res:
                check(False, "a wrong password was accepted: %s" % res.status)
        except urllib.error.HTTPError as err:
            err.read()
            if err.code == 429:
                retry = int(err.headers.get("Retry-After", "0"))
                if retry >= 3:
                    break
                time.sleep(retry + 0.1)
            else:
                check(err.code == 401, "a wrong password: expected 401 or 429, got %s" % err.code)
    check(retry >= 3, "no lock of 3 s or more after 12 failed logins (last Retry-After %s)" % retry)
    go(a, FOLLOWER, "/login")
    for field, value in (("login-email", email), ("login-password", "not-the-password")):
        el = visible(a, "#" + field, "the login form")
        el.clear()
        el.send_keys(value)
    a.find_element(By.ID, "login-submit").click()
    wait(a, lambda d: "try again in" in alert_text(d), "the 429 message on the login page")
    text = alert_text(a)
    check("Wrong email or password" not in text, "a locked login reads as a wrong password: %r" % text)
    check(a.find_elements(By.ID, "login-email"), "the login form stays after a 429")


def main():
    os.makedirs(SHOTS, exist_ok=True)
    t0 = time.monotonic()
    schema = setup_data()
    steps = []
    try:
        a = new_driver()
        b = new_driver()
        steps = [
            ("login and projects", lambda: check_login_and_projects(a)),
            ("csrf", lambda: check_csrf(a)),
            ("create and edit", lambda: check_create_and_edit(a)),
            ("schema violation", lambda: check_schema_violation(a)),
            ("editor on the follower", lambda: login(b, FOLLOWER, "editor@example.com")),
            ("conflict and live updates", lambda: check_conflict_and_live(a, b)),
            ("conflict, discard mine", lambda: check_conflict_discard(b)),
            ("history and rollback", lambda: check_history(a)),
            ("schemas", lambda: check_schemas(a, schema)),
            ("audit", lambda: check_audit(a)),
            ("cluster", lambda: check_cluster(a)),
            ("members, keys and users", lambda: check_members_keys_users(a)),
            ("xss", lambda: check_xss(a)),
            ("delete a config", lambda: check_delete_config(a)),
            ("phone", lambda: check_phone(a)),
            ("viewer", lambda: check_viewer(b)),
            ("transfer leadership", lambda: check_transfer(a)),
            ("logout", lambda: check_logout(a)),
            ("login throttled", lambda: check_login_throttled(a)),
        ]
        for name, step in steps:
            t = time.monotonic()
            if name == "viewer":
                # The same browser as the editor's: log the editor out first.
                check_logout(b)
            step()
            log("ok: %s (%.1f s)" % (name, time.monotonic() - t))
        for d in DRIVERS:
            bad = console_problems(d)
            log("browser console: %d entries, %d problems" % (len(LOGS.get(id(d), [])), len(bad)))
            check(not bad, "browser console: %s" % bad)
    finally:
        for d in DRIVERS:
            try:
                d.quit()
            except Exception as err:  # noqa: BLE001 - keep quitting the others
                log("quit: %s" % err)
    log("all checks passed in %.1f s" % (time.monotonic() - t0))


if __name__ == "__main__":
    try:
        main()
    except Failure as err:
        print("FAIL: %s" % err, file=sys.stderr)
        sys.exit(1)
