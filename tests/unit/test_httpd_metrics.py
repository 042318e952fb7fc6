"""The Prometheus text formatter, read back by prometheus_client's own parser."""
import math

from prometheus_client.parser import text_string_to_metric_families

from gcircus.httpd.metrics import Family, render


def parse(text):
    return {family.name: family for family in text_string_to_metric_families(text)}


def test_counters_gauges_and_labels_survive_the_reference_parser():
    text = render([
        Family("gcircus_things_total", "counter", "Things.\nSecond line \\ with a backslash.")
        .add(3, watcher="a").add(4.5, watcher='we"ird\\name\nx'),
        Family("gcircus_level", "gauge", "A level.").add(None).add(float("inf"), kind="top"),
        Family("gcircus_empty", "gauge", "No samples: left out."),
    ])
    families = parse(text)
    assert set(families) == {"gcircus_things", "gcircus_level"}
    things = families["gcircus_things"]
    assert things.type == "counter" and things.documentation == "Things.\nSecond line \\ with a backslash."
    assert [(s.name, s.labels, s.value) for s in things.samples] == [
        ("gcircus_things_total", {"watcher": "a"}, 3.0),
        ("gcircus_things_total", {"watcher": 'we"ird\\name\nx'}, 4.5)]
    level = families["gcircus_level"].samples
    assert math.isnan(level[0].value) and level[1].value == math.inf


def test_integers_stay_integers_and_booleans_are_0_or_1():
    text = render([Family("gcircus_n", "gauge", "n").add(12345678901234).add(True, b="1").add(False, b="0")])
    assert "gcircus_n 12345678901234\n" in text and 'gcircus_n{b="1"} 1\n' in text and 'gcircus_n{b="0"} 0\n' in text
