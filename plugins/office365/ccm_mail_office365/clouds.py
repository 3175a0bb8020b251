"""Microsoft's national clouds: each has its own login host and Graph host.

A token from one cloud is useless in another, and a tenant exists in exactly one cloud; choosing
the wrong one shows up as AADSTS90002 (tenant not found). Keeping the table in one place lets the
account form offer it as a choice and the tests check that the right hosts are contacted.
"""

from __future__ import annotations

from dataclasses import dataclass

from ccm_mail_hookspecs import T


@dataclass(frozen=True, slots=True)
class Cloud:
    id: str
    label: T
    login_host: str
    graph_host: str

    @property
    def authority_host(self) -> str:
        return f"https://{self.login_host}"

    @property
    def graph_endpoint(self) -> str:
        return f"https://{self.graph_host}"


CLOUDS: dict[str, Cloud] = {
    c.id: c
    for c in (
        Cloud("global", T("Weltweit (auch GCC)", "Global (also GCC)"), "login.microsoftonline.com", "graph.microsoft.com"),
        Cloud(
            "usgov_high", T("US Government GCC High", "US Government GCC High"), "login.microsoftonline.us", "graph.microsoft.us"
        ),
        Cloud("usgov_dod", T("US Government DoD", "US Government DoD"), "login.microsoftonline.us", "dod-graph.microsoft.us"),
        Cloud("china", T("China (21Vianet)", "China (21Vianet)"), "login.chinacloudapi.cn", "microsoftgraph.chinacloudapi.cn"),
    )
}
DEFAULT_CLOUD = "global"
