#!/usr/bin/env python3
"""Writes the SimGrid platform files cnnpar simulates on (sim/platforms/), each with a hostfile listing every node
with its core count ("node-3:16"), which scripts/smpi_run.sh hands to smpirun so that consecutive ranks share a node.

Usage: sim/make_platforms.py [--speed FLOPS] [--out sim/platforms]

--speed is the core speed in flop/s, where one flop is one multiply-add of our conv kernel on the machine that
calibrated it (scripts/smpi_calibrate.sh prints it); scripts/smpi_run.sh passes the same value as smpi/host-speed, so
a simulated core runs exactly as fast as this machine's. Scale it to model faster or slower cores.

The platforms (latency and bandwidth documented in each file and in docs/simulation.md):
  cluster-4x4      4 nodes x 4 cores, crossbar: the CI test platform (P = 16)
  crossbar-64x16   64 nodes x 16 cores, every node its own link to one non-blocking switch
  fattree-64x16    64 nodes x 16 cores, two-level fat tree (16 nodes per leaf switch, 16 spine switches: full bisection)
  twolevel-8x8x16  8 racks x 8 nodes x 16 cores: nodes on a rack switch, racks on a 4:1 oversubscribed backbone
Every node: 16 (or 4) cores sharing a loopback of 20 GB/s and 0.3 us for intra-node (shared-memory) transfers;
node links 12.5 GB/s (100 Gb/s, InfiniBand EDR class) and 1 us; the spine links of the fat tree likewise.
"""
import argparse
import pathlib

HEADER = """<?xml version='1.0'?>
<!DOCTYPE platform SYSTEM "https://simgrid.org/simgrid.dtd">
<!-- Written by sim/make_platforms.py (do not edit: re-run it). {what}
     Core speed {speed:.4g} flop/s (one flop = one conv multiply-add on the calibrating machine).
     Intra-node: loopback {lbw} and {llat} per transfer between ranks of one node.
     Node links: {bw}, {lat}. {extra} -->
<platform version="4.1">
"""
NODE_BW, NODE_LAT = "12.5GBps", "1us"
LOOP_BW, LOOP_LAT = "20GBps", "0.3us"


def cluster(cid, nodes, cores, speed, first=0, extra_attrs="", indent="  "):
    return (f'{indent}<cluster id="{cid}" prefix="node-" suffix="" radical="{first}-{first + nodes - 1}" '
            f'speed="{speed:.6g}f" core="{cores}" bw="{NODE_BW}" lat="{NODE_LAT}" sharing_policy="SPLITDUPLEX" '
            f'loopback_bw="{LOOP_BW}" loopback_lat="{LOOP_LAT}"{extra_attrs}/>\n')


def write(out, name, what, extra, body, hosts):
    text = HEADER.format(what=what, speed=SPEED, lbw=LOOP_BW, llat=LOOP_LAT, bw=NODE_BW, lat=NODE_LAT, extra=extra)
    (out / f"{name}.xml").write_text(text + body + "</platform>\n")
    (out / f"{name}.hosts").write_text("".join(f"node-{n}:{c}\n" for n, c in hosts))


def main():
    global SPEED
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--speed", type=float, default=5.0e9)
    ap.add_argument("--out", default=str(pathlib.Path(__file__).resolve().parent / "platforms"))
    a = ap.parse_args()
    SPEED = a.speed
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)

    write(out, "cluster-4x4", "4 nodes x 4 cores on one crossbar switch (the CI platform).",
          "No backbone: a non-blocking switch.", '  <zone id="world" routing="Full">\n' +
          cluster("cluster", 4, 4, SPEED, indent="    ") + "  </zone>\n", [(n, 4) for n in range(4)])
    write(out, "crossbar-64x16", "64 nodes x 16 cores on one crossbar switch.",
          "No backbone: a non-blocking switch.", '  <zone id="world" routing="Full">\n' +
          cluster("crossbar", 64, 16, SPEED, indent="    ") + "  </zone>\n", [(n, 16) for n in range(64)])
    # FAT_TREE parameters: levels; children per switch (leaf, spine); parents per child; links per parent-child pair.
    write(out, "fattree-64x16", "64 nodes x 16 cores, fat tree: 4 leaf switches of 16 nodes, 16 spine switches.",
          "Every switch-to-switch link like a node link; 16 down and 16 up per leaf: full bisection.",
          '  <zone id="world" routing="Full">\n' +
          cluster("fattree", 64, 16, SPEED, extra_attrs=' topology="FAT_TREE" topo_parameters="2;16,4;1,16;1,1"',
                  indent="    ") + "  </zone>\n", [(n, 16) for n in range(64)])
    # Two levels: each rack a cluster whose backbone is its switch (bb 100 GB/s); racks joined through one backbone
    # link each of 25 GB/s, 2 us: 8 nodes x 12.5 GB/s into 25 GB/s is 4:1 oversubscribed.
    racks, per_rack = 8, 8
    body = '  <zone id="world" routing="Full">\n'
    for r in range(racks):
        body += cluster(f"rack{r}", per_rack, 16, SPEED, first=r * per_rack,
                        extra_attrs=f' bb_bw="100GBps" bb_lat="0.5us" router_id="router{r}"', indent="    ")
    for r in range(racks):
        body += f'    <link id="uplink{r}" bandwidth="25GBps" latency="2us"/>\n'
    for r in range(racks):
        for q in range(r + 1, racks):
            body += (f'    <zoneRoute src="rack{r}" dst="rack{q}" gw_src="router{r}" gw_dst="router{q}">'
                     f'<link_ctn id="uplink{r}"/><link_ctn id="uplink{q}"/></zoneRoute>\n')
    body += "  </zone>\n"
    write(out, "twolevel-8x8x16", "8 racks x 8 nodes x 16 cores: rack switches (100 GB/s, 0.5 us) joined by "
          "a backbone.", "Rack uplinks 25 GB/s, 2 us each (a rack-to-rack route crosses two): 4:1 oversubscribed.",
          body, [(n, 16) for n in range(racks * per_rack)])


if __name__ == "__main__":
    main()
