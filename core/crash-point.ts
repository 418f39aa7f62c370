/**
 * Places where a test may kill the process, to make a crash window
 * reproducible instead of racing for it: with `COSAFE_CRASH_AT=<name>` in its
 * environment, the process sends itself SIGKILL when it reaches that point.
 * Nothing else reads the variable; unset (always, outside tests), this is a
 * string comparison.
 */
export type CrashPointName = 'gateway-event-committed';

export function crashPoint(name: CrashPointName): void {
  if (process.env.COSAFE_CRASH_AT === name) process.kill(process.pid, 'SIGKILL');
}
