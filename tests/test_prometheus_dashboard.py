"""The Grafana dashboard's structure: what Grafana would silently mis-render rather than reject."""
import json
import re
from pathlib import Path

DASHBOARD = json.loads((Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "caed-dashboard.json").read_text())
GRAFANA_BUILTINS = {"__rate_interval", "__interval", "__range"}


def cells(panel):
    g = panel["gridPos"]
    return {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}


def test_panels_have_unique_ids_and_do_not_overlap_on_the_24_column_grid():
    panels = DASHBOARD["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    taken = set()
    for p in panels:
        assert p["gridPos"]["x"] + p["gridPos"]["w"] <= 24, p["title"]
        assert not cells(p) & taken, f"{p['title']} overlaps another panel"
        taken |= cells(p)


def test_every_query_names_a_defined_variable_and_the_prometheus_datasource():
    defined = {v["name"] for v in DASHBOARD["templating"]["list"]} | GRAFANA_BUILTINS
    datasource = next(v for v in DASHBOARD["templating"]["list"] if v["type"] == "datasource")
    assert datasource["query"] == "prometheus"
    for panel in DASHBOARD["panels"]:
        assert panel["datasource"]["uid"] == "${%s}" % datasource["name"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(set(ref_ids)) == len(ref_ids), panel["title"]
        for target in panel["targets"]:
            used = set(re.findall(r"\$\{?(\w+)", target["expr"]))
            assert used <= defined, (panel["title"], used - defined)
