"""The real Microsoft host names the sandbox answers for, per national cloud.

Kept separate from the transport's own cloud table on purpose: the sandbox must describe what
Microsoft runs, not what the plugin believes, so a wrong entry in the plugin shows up as a failure.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Cloud:
    """One national cloud: its login host, its Graph hosts and the Graph resource ids."""

    name: str
    login_host: str
    graph_hosts: tuple[str, ...]

    @property
    def graph_resources(self) -> tuple[str, ...]:
        return tuple(f"https://{h}" for h in self.graph_hosts)


CLOUDS: dict[str, Cloud] = {
    "global": Cloud("global", "login.microsoftonline.com", ("graph.microsoft.com",)),
    # GCC High and DoD share one login host; DoD has its own Graph host.
    "usgov": Cloud("usgov", "login.microsoftonline.us", ("graph.microsoft.us", "dod-graph.microsoft.us")),
    "china": Cloud("china", "login.chinacloudapi.cn", ("microsoftgraph.chinacloudapi.cn",)),
}

LOGIN_HOSTS: frozenset[str] = frozenset(c.login_host for c in CLOUDS.values())
GRAPH_HOSTS: frozenset[str] = frozenset(h for c in CLOUDS.values() for h in c.graph_hosts)
#: Every name the sandbox's certificate covers and the CONNECT proxy lets through.
PROXY_HOSTS: frozenset[str] = LOGIN_HOSTS | GRAPH_HOSTS

#: Resource of Exchange Online (SMTP AUTH, EWS): tokens for it must not work at Graph.
EXCHANGE_RESOURCES: frozenset[str] = frozenset(
    {
        "https://outlook.office365.com",
        "https://outlook.office.com",
        "https://outlook.office365.us",
        "https://partner.outlook.cn",
    }
)

#: The application id of Microsoft Graph; Entra also accepts it as a resource name.
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"


def cloud_of_login_host(host: str) -> Cloud | None:
    for cloud in CLOUDS.values():
        if cloud.login_host == host:
            return cloud
    return None


def cloud_of_graph_host(host: str) -> Cloud | None:
    for cloud in CLOUDS.values():
        if host in cloud.graph_hosts:
            return cloud
    return None


def split_host(host_header: str) -> str:
    """Host name without port, lower case ("127.0.0.1:4433" -> "127.0.0.1")."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host.split("]")[0] + "]"
    return host.rsplit(":", 1)[0] if ":" in host else host
