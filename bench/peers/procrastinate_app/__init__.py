"""Procrastinate through its Django integration (procrastinate.contrib.django)."""
