"""Print bench/results/backup.json (bench/backup_throughput.sh) as the Markdown tables of docs/benchmarks.md.

    .venv/bin/python bench/backup_table.py [bench/results/backup.json]
"""
import json
import sys


def mb(value):
    """Bytes as MB with one decimal, or an em dash when pgBackRest reports none."""
    return "—" if value is None else f"{value / 1e6:,.1f}"


def main(path):
    """Print the matrix, the incrementals, the drill and the disk reference."""
    with open(path, encoding="utf-8") as handle:
        result = json.load(handle)
    disk = result["disk_dd"]
    print(f"Disk (dd, mean of {len(disk['runs'])} runs): database host write {disk['db_host_write_mb_s']} MB/s, "
          f"read {disk['db_host_read_mb_s']} MB/s; repository host write {disk['repo_host_write_mb_s']} MB/s, "
          f"read {disk['repo_host_read_mb_s']} MB/s")
    print()
    print("| row (type:level:process-max:bundle[:block]) | kind | backed up MB | stored MB | ratio "
          "| backup s | backup MB/s | % repo write | backup CPU s db+repo "
          "| restore s | restore MB/s | % db write | restore CPU s db+repo |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for run in result["runs"]:
        back, rest = run["backup"], run["restore"]
        print(f"| {run['row']} | {run['type']} | {mb(run['backup_delta_bytes'])} | {mb(run['repo_delta_bytes'])} "
              f"| {run['compression_ratio']} | {back['wall_seconds']} | {back['throughput_mb_s']} "
              f"| {back['pct_of_repo_write']} % | {back['cpu_seconds_db_host']} + {back['cpu_seconds_repo_host']} "
              f"| {rest['wall_seconds']} | {rest['throughput_mb_s']} | {rest['pct_of_db_write']} % "
              f"| {rest['cpu_seconds_db_host']} + {rest['cpu_seconds_repo_host']} |")
    drill = result["drill"]
    print()
    print(f"Drill on {mb(drill['on_data_directory_bytes'])} MB: passed={drill['passed']}, RTO {drill['rto_seconds']} s, "
          f"RPO {drill['rpo_seconds']} s, wall {drill['wall_seconds']} s")
    print(f"Load average: start {result['machine']['load_average_start']}, end {result['machine']['load_average_end']}")
    for phase in result["phases"]:
        print(f"  {phase['phase']}: {phase['seconds']} s, load {phase['load_before']} -> {phase['load_after']}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bench/results/backup.json")
