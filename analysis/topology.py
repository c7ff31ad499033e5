"""Which switch each rank's node hangs from: the level above the nodes that the model prices separately (a message
between two switches crosses more links than one under a single switch: α_cross, β_cross in `schedule.Network`).

A simulated run carries its whole platform file (`/meta@smpi_platform_xml`, written by scripts/smpi_run.sh): every
`<cluster>` of it is read for its host names (prefix, radical, suffix). A FAT_TREE cluster's first level of
`topo_parameters` is how many nodes hang from one leaf switch, so a node's switch is its position in the cluster
divided by that; any other cluster (a crossbar, a rack of the two-level platform) is one switch. A real run has no
platform: all its nodes are taken to be under one switch (the model says so; a cluster's real topology is not
recorded in the results file).
"""
from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np


def switches(hosts, platform_xml: str) -> tuple[np.ndarray, str]:
    """([P] switch index of each rank's host, how it was found). Hosts the platform does not list share switch 0
    with a note."""
    hosts = [str(h) for h in hosts]
    if not platform_xml:
        return np.zeros(len(hosts), dtype=int), "one switch (a real run: no platform recorded)"
    try:
        root = ET.fromstring(platform_xml)
    except ET.ParseError as error:
        return np.zeros(len(hosts), dtype=int), f"one switch (the recorded platform does not parse: {error})"
    switch_of, described = {}, []
    next_switch = 0
    for cluster in root.iter("cluster"):
        names = _host_names(cluster)
        per_switch = len(names) or 1
        if cluster.get("topology", "").upper() == "FAT_TREE":
            levels = cluster.get("topo_parameters", "").split(";")
            per_switch = int(levels[1].split(",")[0])
            described.append(f"{cluster.get('id')}: fat tree, {per_switch} nodes per leaf switch")
        else:
            described.append(f"{cluster.get('id')}: one switch")
        for position, name in enumerate(names):
            switch_of[name] = next_switch + position // per_switch
        next_switch += -(-len(names) // per_switch)
    unknown = sorted({h for h in hosts if h not in switch_of})
    out = np.array([switch_of.get(h, 0) for h in hosts], dtype=int)
    how = "platform file (" + "; ".join(described) + ")" if described else "one switch (no <cluster> in the platform)"
    if unknown:
        how += f"; hosts not in any cluster, taken as switch 0: {', '.join(unknown[:4])}"
    return out, how


def climbs(hosts, platform_xml: str) -> np.ndarray | None:
    """[P] the spine a message to each rank's node climbs to from another leaf, or None where that is not modelled
    (a real run, a platform that is not one two-level FAT_TREE cluster). SimGrid routes a fat tree d-mod-k
    (FatTreeZone::get_local_route): from a leaf a message goes up to parent (d / up₁) mod (up₂ · links₂), d the
    destination's position in the cluster — so every flow of one leaf to destinations of one residue shares one
    leaf-to-spine link, whichever node of the leaf sends it."""
    if not platform_xml:
        return None
    try:
        root = ET.fromstring(platform_xml)
    except ET.ParseError:
        return None
    clusters = list(root.iter("cluster"))
    if len(clusters) != 1 or clusters[0].get("topology", "").upper() != "FAT_TREE":
        return None
    cluster = clusters[0]
    levels = cluster.get("topo_parameters", "").split(";")
    if len(levels) != 4 or levels[0].strip() != "2":
        return None
    up = [int(v) for v in levels[2].split(",")]
    links = [int(v) for v in levels[3].split(",")]
    names = _host_names(cluster)
    position = {name: index for index, name in enumerate(names)}
    if any(str(h) not in position for h in hosts):
        return None
    return np.array([(position[str(h)] // up[0]) % (up[1] * links[1]) for h in hosts], dtype=int)


def _host_names(cluster) -> list[str]:
    """The host names of a `<cluster>`, in its order: prefix, each number of its radical, suffix."""
    return [f"{cluster.get('prefix', '')}{i}{cluster.get('suffix', '')}" for i in _radical(cluster.get("radical", ""))]


def _radical(text: str) -> list[int]:
    """SimGrid's radical: "0-63" or "0-3,8,10-11"."""
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        first, _, last = part.partition("-")
        out += list(range(int(first), int(last or first) + 1))
    return out
