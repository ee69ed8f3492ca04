#!/usr/bin/env python3
"""Opens a firedrill HTML report in headless Chromium (Debian's /usr/bin/chromium, driven by
Playwright), the way a reader and a printer would: takes a screenshot, prints it to PDF, and says
what the page did. Prints one JSON object:

  {"console": [...messages of level error or warning...], "page_errors": [...],
   "requests": [...every URL the page asked for, the report itself included...],
   "svgs": N, "chart_points": N, "tables": N, "pdf": PATH, "pdf_pages": N, "screenshot": PATH}

Usage: report-browser.py REPORT.html OUT_DIR
"""
import json
import pathlib
import sys

from playwright.sync_api import sync_playwright
from pypdf import PdfReader

# The flags this machine's closed network needs (no background connections), as root.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def main() -> int:
    report = pathlib.Path(sys.argv[1]).resolve()
    out = pathlib.Path(sys.argv[2]).resolve()
    out.mkdir(parents=True, exist_ok=True)
    result = {"console": [], "page_errors": [], "requests": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda m: result["console"].append(f"{m.type}: {m.text}")
                if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: result["page_errors"].append(str(e)))
        page.on("request", lambda r: result["requests"].append(r.url))
        page.goto(report.as_uri(), wait_until="load")
        result["svgs"] = page.locator("svg").count()
        result["chart_points"] = page.locator("svg circle").count()
        result["tables"] = page.locator("table").count()
        shot = out / "report.png"
        page.screenshot(path=str(shot), full_page=False)
        result["screenshot"] = str(shot)
        pdf = out / "report.pdf"
        page.pdf(path=str(pdf), format="A4", print_background=True)
        result["pdf"] = str(pdf)
        result["pdf_pages"] = len(PdfReader(str(pdf)).pages)
        browser.close()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
