import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';

export interface RunInfo {
  commit: string;
  shortCommit: string;
  dirty: boolean;
  node: string;
  cpuModel: string;
  cpuCount: number;
  platform: string;
  totalMemMiB: number;
  date: string;
}

function git(args: string[]): string {
  try {
    return execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}

export function runInfo(): RunInfo {
  const commit = git(['rev-parse', 'HEAD']) || 'unknown';
  return {
    commit,
    shortCommit: git(['rev-parse', '--short', 'HEAD']) || 'nogit',
    dirty: git(['status', '--porcelain']) !== '',
    node: process.version,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    cpuCount: os.cpus().length,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    totalMemMiB: Math.round(os.totalmem() / 2 ** 20),
    date: new Date().toISOString(),
  };
}

let clockTicks: number | undefined;
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** User + system CPU time of a process in ms, from /proc (Linux); undefined once it is gone. */
export function processCpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces; the fields we want come after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of proc(5); fields[0] here is field 3.
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticksPerSecond();
  } catch {
    return undefined;
  }
}

/** Our child processes named `name` (influxd is started by the test helper, which does not hand out its pid). */
export function childPidsNamed(name: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (comm === name && ppid === process.pid) pids.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return pids;
}

/** Busy and total CPU time of the whole machine in ms, all cores together, from /proc/stat. */
function machineCpuMs(): { busy: number; total: number } | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    // cpu user nice system idle iowait irq softirq steal ...; idle and iowait are not busy.
    const f = line.trim().split(/\s+/).slice(1, 9).map(Number);
    const total = f.reduce((a, b) => a + b, 0);
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    return { busy: ((total - idle) * 1000) / ticksPerSecond(), total: (total * 1000) / ticksPerSecond() };
  } catch {
    return undefined;
  }
}

/**
 * CPU use of the processes that share the machine during a phase, as a share
 * of one core (100 % = one core busy): on two cores, this shows who is the
 * bottleneck. `others` is everything else on the machine: a figure taken while
 * others were busy is not this code's.
 */
export class CpuMeter {
  private readonly start = new Map<string, number>();
  private startedAt = 0;
  private machineAtStart: { busy: number; total: number } | undefined;

  constructor(private readonly pids: () => Record<string, number | undefined>) {}

  begin(): void {
    this.startedAt = performance.now();
    this.machineAtStart = machineCpuMs();
    this.start.clear();
    for (const [name, pid] of Object.entries(this.pids())) {
      const ms = pid === undefined ? undefined : processCpuMs(pid);
      if (ms !== undefined) this.start.set(name, ms);
    }
  }

  /**
   * Per process: CPU ms used since `begin()` and that as % of one core over the
   * wall time. `reported`: CPU ms of processes that measured themselves (a child
   * that has exited by now).
   */
  end(reported: Record<string, number> = {}): Record<string, { cpuMs: number; corePercent: number }> {
    const wallMs = performance.now() - this.startedAt;
    const out: Record<string, { cpuMs: number; corePercent: number }> = {};
    const share = (cpuMs: number) => ({ cpuMs: Math.round(cpuMs), corePercent: Math.round((cpuMs / wallMs) * 1000) / 10 });
    let ours = 0;
    for (const [name, pid] of Object.entries(this.pids())) {
      const before = this.start.get(name) ?? 0;
      const now = pid === undefined ? undefined : processCpuMs(pid);
      if (now === undefined) continue;
      ours += now - before;
      out[name] = share(now - before);
    }
    for (const [name, cpuMs] of Object.entries(reported)) {
      ours += cpuMs;
      out[name] = share(cpuMs);
    }
    const machine = machineCpuMs();
    if (machine && this.machineAtStart) {
      out.others = share(Math.max(0, machine.busy - this.machineAtStart.busy - ours));
    }
    return out;
  }
}
