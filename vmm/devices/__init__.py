"""Devices the sample VMM emulates for its guests."""
