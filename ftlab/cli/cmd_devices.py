"""Accelerators ftd schedules on: VRAM used/total, utilisation, temperature, the job holding each;
the CPU slots and host load.

    ftctl devices [--json]
"""

from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("--json", action="store_true", help="print the telemetry record as JSON")


def _mib(value) -> str:
    return "-" if value is None else f"{value / 1024:.1f}"


def run(args) -> int:
    from ftlab.daemon import client, protocol

    from .jobs_view import console, print_json

    with client.connect() as ftd:
        data = ftd.request(protocol.DEVICES)
    if args.json:
        print_json(data)
        return 0
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in ("DEVICE", "NAME", "VRAM GiB (used/total)", "UTIL %", "TEMP °C", "JOB"):
        table.add_column(column)
    for device in data["devices"]:
        table.add_row(f"gpu{device['index']}", device["name"], f"{_mib(device['used_mib'])}/{_mib(device['total_mib'])}",
                      "-" if device["utilization"] is None else str(device["utilization"]),
                      "-" if device["temperature_c"] is None else str(device["temperature_c"]),
                      "-" if device["job"] is None else str(device["job"]))
    cpu = data["cpu"]
    table.add_row("cpu", cpu["name"], "-", f"{cpu['utilization']:.0f}", "-",
                  (",".join(map(str, cpu["jobs"])) or "-") + f" ({cpu['slots']} slot{'s' if cpu['slots'] != 1 else ''})")
    host = data["host"]
    out = console()
    out.print(table)
    out.print(f"host: CPU {host['cpu_percent']:.0f}% of {host['cpu_count']} cores, RAM "
              f"{host['ram_used_mib'] / 1024:.1f}/{host['ram_total_mib'] / 1024:.1f} GiB; devices from {data['source']}")
    return 0
