"""Collects what a page reports about its Content-Security-Policy in a real Chromium: the
`securitypolicyviolation` events and the console's CSP messages."""

WATCH = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(
    `${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`);
});
"""


def watch(page):
    """Start watching (before the first goto); returns the console's CSP messages as they come."""
    console = []
    page.add_init_script(WATCH)

    def on_console(message):
        text = message.text
        if "Content Security Policy" in text or "Content-Security-Policy" in text or "Permissions-Policy" in text \
                or "Permissions policy" in text:
            console.append(text)

    page.on("console", on_console)
    return console


def violations(page, console):
    return list(console) + page.evaluate("window.__cspViolations || []")
