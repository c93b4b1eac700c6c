"""Lighthouse (issue 11, point 8): npm `lighthouse` with the system Chromium, mobile defaults, three runs
per page, the median run's scores: performance, accessibility, best practices, SEO, LCP, TBT, CLS.
Not a test; `make bench` runs it after the pages (docs/performance.md).

    .venv/bin/python -m bench.lighthouse [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from bench.pages import BIN, conditions, prepare, save, serve

HERE = Path(__file__).resolve().parent
LIGHTHOUSE = HERE / "node_modules" / ".bin" / "lighthouse"
PAGES = [
    ("home", "/"), ("suggest", "/suggest"), ("track_find", "/track"), ("tracking", "/track/{tracking}"),
    ("summary", "/summary/appeals"), ("policies", "/policies"), ("policy", "/policies/{policy}"), ("guide", "/g/{guide}"),
]
TARGETS = {"performance": 95, "accessibility": 100, "best-practices": 100, "seo": 90}


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit("Chromium is needed (Debian: apt-get install chromium)")


def run_once(url: str, out: Path) -> dict[str, Any]:
    command = [
        str(LIGHTHOUSE), url, "--quiet", "--output=json", f"--output-path={out}",
        "--chrome-flags=--headless=new --no-sandbox --disable-gpu --disable-background-networking --disable-component-update",
    ]
    subprocess.run(command, check=True, env={**os.environ, "CHROME_PATH": chromium()}, capture_output=True)
    report = json.loads(out.read_text())
    audits = report["audits"]
    return {
        **{key: round(100 * (report["categories"][key]["score"] or 0)) for key in TARGETS},
        "lcp_ms": round(audits["largest-contentful-paint"]["numericValue"]),
        "tbt_ms": round(audits["total-blocking-time"]["numericValue"]),
        "cls": round(audits["cumulative-layout-shift"]["numericValue"], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not LIGHTHOUSE.exists():
        subprocess.run(["npm", "ci", "--prefix", str(HERE), "--no-audit", "--no-fund", "--loglevel=error"], check=True)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="shanzhi-lighthouse-") as tmp:
        data = prepare(Path(tmp), 1)
        with serve([str(BIN / "shanzhi"), "serve", "--host", "127.0.0.1"], {"SHANZHI_VAR_DIR": tmp}) as app:
            for name, path in PAGES:
                url = app.url + path.format(**data)
                runs = [run_once(url, Path(tmp) / f"{name}-{i}.json") for i in range(args.runs)]
                median = sorted(runs, key=lambda r: r["performance"])[len(runs) // 2]
                exempt_seo = name == "tracking"  # a private page: noindex on purpose
                meets = all(median[k] >= t for k, t in TARGETS.items() if not (k == "seo" and exempt_seo))
                row = {
                    "name": f"lighthouse.{name}", "path": path, **median, "runs": args.runs,
                    "performance_runs": [r["performance"] for r in runs], "lcp_ms_median": statistics.median(r["lcp_ms"] for r in runs),
                    "targets": TARGETS, "seo_exempt": exempt_seo, "meets": meets, "conditions": conditions("sqlite"),
                }
                results.append(row)
                print(
                    f"{name:<9} performance {median['performance']:>3}  accessibility {median['accessibility']:>3}  "
                    f"best practices {median['best-practices']:>3}  SEO {median['seo']:>3}  LCP {median['lcp_ms']} ms  "
                    f"TBT {median['tbt_ms']} ms  CLS {median['cls']}{'  (SEO exempt: noindex)' if exempt_seo else ''}",
                    flush=True,
                )
    save(results)


if __name__ == "__main__":
    main()
