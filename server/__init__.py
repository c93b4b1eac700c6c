"""Shanzhi (善治解放路): the Litestar application of Jiefanglu Subdistrict."""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent
