"""Packaging: the shipped plugins live in top-level plugins/ and install as gcircus.plugins."""
from setuptools import setup, find_packages

packages = find_packages(include=["gcircus", "gcircus.*"])
packages.append("gcircus.plugins")

setup(packages=packages, package_dir={"gcircus.plugins": "plugins"})
