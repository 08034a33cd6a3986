"""``make cluster``'s tutor's page: each gateway's page is told the cluster's command and query
addresses (not the single-process defaults), and every command and query replica accepts the
CORS requests of every gateway's page and no other."""

from __future__ import annotations

from services.cluster_ha import REPLICAS, Layout
from services.live_gateway.settings import WebSettings
from shared.http.cors.settings import CorsSettings
from shared.settings import load


def test_each_gateways_page_calls_the_clusters_apis_which_accept_its_origin() -> None:
    layout = Layout.from_base(8100)
    gateways = layout.services["live_gateway"]
    for number in range(1, REPLICAS + 1):
        web = load(WebSettings, layout.page_settings("live_gateway", number))
        assert web.command == f"http://127.0.0.1:{layout.services['command'][number - 1]}"
        assert web.query == f"http://127.0.0.1:{layout.services['query'][number - 1]}"
        # Not the defaults a single-process run uses (its own ports 8010 and 8014).
        assert web.command != load(WebSettings, {}).command
        assert web.query != load(WebSettings, {}).query
    pages = {f"http://{host}:{port}" for port in gateways for host in ("127.0.0.1", "localhost")}
    for program in ("command", "query"):
        for number in range(1, REPLICAS + 1):
            cors = load(CorsSettings, layout.page_settings(program, number))
            # Outside development mode too: the cluster names the origins.
            assert set(cors.allowed(dev_mode=False)) == pages
    for program in ("relay", "projections", "scheduler", "notifier"):
        assert layout.page_settings(program, 1) == {}


def test_free_ports_give_the_page_the_ports_the_replicas_take() -> None:
    layout = Layout.free()
    web = load(WebSettings, layout.page_settings("live_gateway", 2))
    assert web.command.endswith(f":{layout.services['command'][1]}")
    cors = load(CorsSettings, layout.page_settings("query", 1))
    assert f"http://127.0.0.1:{layout.services['live_gateway'][1]}" in cors.allowed(dev_mode=True)
